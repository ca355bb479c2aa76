// The dashboard grid's geometry (24 columns, 30 px rows, 8 px gaps) and
// placing a panel: where a drag lands, the size a resize gives, and
// pushing the panels it lands on down below it. Pure functions over
// Grafana's gridPos {x, y, w, h}.

export const COLUMNS = 24;
export const ROW_PX = 30;
export const GAP_PX = 8;

/** The grid cell a panel dragged by (dx, dy) px from `pos` lands on, in a grid `gridWidth` px wide. */
export function dropPosition(pos, dx, dy, gridWidth) {
  const colPx = (gridWidth + GAP_PX) / COLUMNS;
  const x = Math.min(COLUMNS - pos.w, Math.max(0, pos.x + Math.round(dx / colPx)));
  const y = Math.max(0, pos.y + Math.round(dy / (ROW_PX + GAP_PX)));
  return { ...pos, x, y };
}

/**
 * The size a panel at `pos` gets when its bottom-right corner is dragged
 * by (dx, dy) px in a grid `gridWidth` px wide: whole cells, at least one
 * column and one row, never past the 24th column. The place stays.
 */
export function resizeTo(pos, dx, dy, gridWidth) {
  const colPx = (gridWidth + GAP_PX) / COLUMNS;
  const w = Math.min(COLUMNS - pos.x, Math.max(1, pos.w + Math.round(dx / colPx)));
  const h = Math.max(1, pos.h + Math.round(dy / (ROW_PX + GAP_PX)));
  return { ...pos, w, h };
}

const overlap = (a, b) => a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;

/**
 * Puts `moved` (a panel whose gridPos is already set) where it is and
 * pushes every panel that would overlap it, or one pushed before, down
 * just below. Changes the panels' gridPos in place; returns the panels
 * that moved besides `moved`.
 */
export function place(panels, moved) {
  const fixed = [moved.gridPos];
  const pushed = [];
  const others = panels.filter((p) => p !== moved && p.gridPos)
    .sort((a, b) => (a.gridPos.y - b.gridPos.y) || (a.gridPos.x - b.gridPos.x));
  for (const p of others) {
    const g = p.gridPos;
    const y0 = g.y;
    for (let again = true; again;) {
      again = false;
      for (const f of fixed) {
        if (overlap(f, g)) { g.y = f.y + f.h; again = true; }
      }
    }
    if (g.y !== y0) pushed.push(p);
    fixed.push(g);
  }
  return pushed;
}
