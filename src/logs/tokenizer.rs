//! The message tokenizer: the same tokens as tantivy's `default` analyzer
//! (split on characters that are not alphanumeric, drop tokens of 40
//! bytes or more, lower-case), in one pass that works on bytes while the
//! text is ASCII — log lines nearly always are.
//!
//! tantivy's `default` chains `SimpleTokenizer` (which decodes every
//! character), `RemoveLongFilter` and `LowerCaser` (which scans each token
//! again to see whether it is ASCII) through boxed token streams. Being a
//! drop-in replacement, it is registered under the name `default`, so
//! indexes written with either one are read alike and query strings
//! (tokenized by tantivy's own `default`) find the same terms; the test
//! below compares the two on every kind of text the benchmark generates
//! and on non-ASCII text.

use tantivy::tokenizer::{Token, TokenStream, Tokenizer};

/// Tokens of this many bytes or more are dropped (as tantivy's default
/// analyzer's `RemoveLongFilter::limit(40)`).
const MAX_TOKEN_BYTES: usize = 40;

/// See the module documentation.
#[derive(Clone, Default)]
pub struct MessageTokenizer {
    token: Token,
}

/// The token stream of one text.
pub struct MessageTokenStream<'a> {
    text: &'a str,
    /// Byte offset where the search for the next token starts.
    at: usize,
    token: &'a mut Token,
}

impl Tokenizer for MessageTokenizer {
    type TokenStream<'a> = MessageTokenStream<'a>;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> MessageTokenStream<'a> {
        self.token.reset();
        MessageTokenStream {
            text,
            at: 0,
            token: &mut self.token,
        }
    }
}

/// Whether the character starting at byte `i` is alphanumeric, and its
/// length in bytes.
#[inline]
fn alnum_at(text: &str, i: usize) -> (bool, usize) {
    let b = text.as_bytes()[i];
    if b < 0x80 {
        return (b.is_ascii_alphanumeric(), 1);
    }
    let c = text[i..].chars().next().expect("i is a char boundary");
    (c.is_alphanumeric(), c.len_utf8())
}

impl TokenStream for MessageTokenStream<'_> {
    fn advance(&mut self) -> bool {
        let text = self.text;
        let len = text.len();
        loop {
            // The start of the next token.
            let mut i = self.at;
            loop {
                if i >= len {
                    self.at = len;
                    return false;
                }
                let (alnum, n) = alnum_at(text, i);
                if alnum {
                    break;
                }
                i += n;
            }
            let start = i;
            let mut ascii = true;
            while i < len {
                let b = text.as_bytes()[i];
                if b < 0x80 {
                    if !b.is_ascii_alphanumeric() {
                        break;
                    }
                    i += 1;
                } else {
                    let (alnum, n) = alnum_at(text, i);
                    if !alnum {
                        break;
                    }
                    ascii = false;
                    i += n;
                }
            }
            self.at = i;
            // Every token of the base tokenizer takes a position, also
            // the ones dropped for their length.
            self.token.position = self.token.position.wrapping_add(1);
            if i - start >= MAX_TOKEN_BYTES {
                continue;
            }
            let word = &text[start..i];
            self.token.offset_from = start;
            self.token.offset_to = i;
            self.token.text.clear();
            if ascii {
                self.token.text.push_str(word);
                self.token.text.make_ascii_lowercase();
            } else {
                for c in word.chars() {
                    self.token.text.extend(c.to_lowercase());
                }
            }
            return true;
        }
    }

    fn token(&self) -> &Token {
        self.token
    }

    fn token_mut(&mut self) -> &mut Token {
        self.token
    }
}

#[cfg(test)]
mod tests {
    use tantivy::tokenizer::TokenizerManager;

    use super::*;

    fn tokens(mut stream: impl TokenStream) -> Vec<(String, usize, usize, usize)> {
        let mut out = Vec::new();
        while stream.advance() {
            let t = stream.token();
            out.push((t.text.clone(), t.position, t.offset_from, t.offset_to));
        }
        out
    }

    #[test]
    fn the_same_tokens_as_tantivys_default() {
        let long = "x".repeat(39);
        let too_long = "y".repeat(40);
        let texts = [
            "",
            "   ",
            "Hello, happy tax payer!",
            "10.2.33.4 - - [27/Nov/2026:05:11:38 +0000] \"GET /api/v1/orders/123 HTTP/1.1\" 200 5123 \"-\" \"Mozilla/5.0 (X11; Linux x86_64)\" 0.125",
            r#"{"ts":"2026-11-27T05:11:38.123Z","level":"info","msg":"order placed","trace_id":"97101dce4e7bfb799ad2e144d6e8f2cf","duration_ms":12}"#,
            "E1127 05:11:38.123456       1 controller.go:42] Reconciling deployment payments/web-5f3a9 generation=7",
            &format!("a {long} b {too_long} c {too_long}{long} d"),
            "Ünïcödé STRASSE straße ΑΒΓ 東京タワー déjà-vu İstanbul ǅ",
            "mixed ascii_and_ü_words, emoji 🙂 between🙂words, tab\tnew\nline",
            "ÀÀÀÀÀÀÀÀÀÀÀÀÀÀÀÀÀÀÀÀ long in bytes, short in chars",
        ];
        let mut reference = TokenizerManager::default().get("default").unwrap();
        let mut ours = MessageTokenizer::default();
        for text in texts {
            assert_eq!(
                tokens(ours.token_stream(text)),
                tokens(reference.token_stream(text)),
                "{text:?}"
            );
        }
    }
}
