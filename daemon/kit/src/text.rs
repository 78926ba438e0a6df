//! The text of values that daemons print and log the same way everywhere.

use std::error::Error;

/// Lower-case hex of `bytes`, two digits a byte.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        text.push(char::from(DIGITS[usize::from(byte >> 4)]));
        text.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    text
}

/// An error with its sources, `a: b: c`: what `{:#}` prints for an `anyhow::Error`, for errors
/// that are not one (a transport's error hides its cause in `source()`).
pub fn error_chain(error: &dyn Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use std::fmt;

    use super::*;

    #[test]
    fn hex_is_two_lower_case_digits_a_byte() {
        assert_eq!(hex(&[]), "");
        assert_eq!(hex(&[0x00]), "00");
        assert_eq!(hex(&[0x0f, 0xa0, 0xff, 0x5c]), "0fa0ff5c");
        let every: Vec<u8> = (0..=255).collect();
        let expected: String = every.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex(&every), expected);
    }

    /// An error whose message is `message` and whose source is `source`.
    #[derive(Debug)]
    struct Layer {
        message: &'static str,
        source: Option<Box<Layer>>,
    }

    impl fmt::Display for Layer {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.message)
        }
    }

    impl Error for Layer {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            self.source
                .as_deref()
                .map(|inner| inner as &(dyn Error + 'static))
        }
    }

    fn layers(messages: &[&'static str]) -> Layer {
        messages
            .iter()
            .rev()
            .fold(None, |source, message| {
                Some(Layer {
                    message,
                    source: source.map(Box::new),
                })
            })
            .unwrap_or(Layer {
                message: "",
                source: None,
            })
    }

    #[test]
    fn an_error_without_sources_is_its_message() {
        assert_eq!(error_chain(&layers(&["store down"])), "store down");
    }

    #[test]
    fn sources_follow_outermost_first() {
        let error = layers(&["transport error", "tls handshake", "certificate expired"]);
        assert_eq!(
            error_chain(&error),
            "transport error: tls handshake: certificate expired"
        );
    }

    #[test]
    fn a_source_that_repeats_its_parent_is_still_printed() {
        // The chain is every message, as `{:#}` prints it; nothing is folded.
        let error = layers(&["closed", "closed"]);
        assert_eq!(error_chain(&error), "closed: closed");
    }

    #[test]
    fn reads_a_standard_librarys_error_chain() {
        // An I/O error shows its inner error's message and hands on that error's source.
        let io = std::io::Error::other(layers(&["cannot write the spool", "disk full"]));
        assert_eq!(error_chain(&io), "cannot write the spool: disk full");
    }
}
