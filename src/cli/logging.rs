//! Structured logs with tracing: human-readable by default, JSON lines on
//! request.

use tracing_subscriber::EnvFilter;

use super::GlobalArgs;

/// Installs the global subscriber. Logs go to stderr so `--once` output on
/// stdout stays machine-readable.
pub fn init(args: &GlobalArgs) -> Result<(), String> {
    let filter = EnvFilter::try_new(&args.log_level).map_err(|e| {
        format!(
            "--log-level {:?} is not a valid filter: {e}",
            args.log_level
        )
    })?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let result = if args.log_format == "json" {
        builder.json().flatten_event(true).try_init()
    } else {
        builder.try_init()
    };
    result.map_err(|e| format!("cannot install the logger: {e}"))
}
