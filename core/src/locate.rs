//! Where a value sits in a JSON text, so that errors about a document can name a line and
//! column as well as a path.
//!
//! A path is a list of segments: object keys, and array indices written `[N]`. The text is
//! assumed to be JSON that already parsed; anything unexpected gives `None`.

/// Renders `["apps", "chat", "functions", "[1]"]` as `apps.chat.functions[1]`.
pub fn render(path: &[&str]) -> String {
    let mut out = String::new();
    for seg in path {
        if !out.is_empty() && !seg.starts_with('[') {
            out.push('.');
        }
        out.push_str(seg);
    }
    out
}

/// The 1-based line and column where the value at `path` starts in `text`.
pub fn locate(text: &str, path: &[&str]) -> Option<(usize, usize)> {
    let mut s = Scanner {
        bytes: text.as_bytes(),
        pos: 0,
    };
    for seg in path {
        s.space();
        if let Some(index) = seg.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
            let index: usize = index.parse().ok()?;
            s.expect(b'[')?;
            for i in 0.. {
                s.space();
                if s.peek()? == b']' {
                    return None;
                }
                if i == index {
                    break;
                }
                s.skip_value()?;
                s.space();
                s.expect(b',')?;
            }
        } else {
            s.expect(b'{')?;
            loop {
                s.space();
                if s.peek()? == b'}' {
                    return None;
                }
                let key = s.string()?;
                s.space();
                s.expect(b':')?;
                s.space();
                if serde_json::from_str::<String>(key).ok()? == *seg {
                    break;
                }
                s.skip_value()?;
                s.space();
                s.expect(b',')?;
            }
        }
    }
    s.space();
    let before = text.get(..s.pos)?;
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    Some((line, column))
}

struct Scanner<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Scanner<'a> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn space(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    fn expect(&mut self, b: u8) -> Option<()> {
        (self.peek()? == b).then(|| self.pos += 1)
    }

    /// A string token, quotes included.
    fn string(&mut self) -> Option<&'a str> {
        let start = self.pos;
        self.expect(b'"')?;
        loop {
            match self.peek()? {
                b'\\' => self.pos += 2,
                b'"' => {
                    self.pos += 1;
                    break;
                }
                _ => self.pos += 1,
            }
        }
        std::str::from_utf8(self.bytes.get(start..self.pos)?).ok()
    }

    fn skip_value(&mut self) -> Option<()> {
        let mut depth = 0usize;
        loop {
            self.space();
            match self.peek()? {
                b'"' => {
                    self.string()?;
                }
                b'{' | b'[' => {
                    depth += 1;
                    self.pos += 1;
                    continue;
                }
                b'}' | b']' => {
                    depth = depth.checked_sub(1)?;
                    self.pos += 1;
                }
                b',' | b':' if depth > 0 => {
                    self.pos += 1;
                    continue;
                }
                _ => {
                    // A number, true, false or null.
                    while !matches!(
                        self.peek(),
                        None | Some(b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r')
                    ) {
                        self.pos += 1;
                    }
                }
            }
            if depth == 0 {
                return Some(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = r#"{
  "apps": {
    "a.b": {"channels": {"x": 1, "room.1": {"functions": ["f", {"k": [1, "]"]}, "g"]}}}
  }
}"#;

    #[test]
    fn finds_keys_and_indices() {
        assert_eq!(locate(DOC, &["apps"]), Some((2, 11)));
        assert_eq!(locate(DOC, &["apps", "a.b"]), Some((3, 12)));
        let f = ["apps", "a.b", "channels", "room.1", "functions"];
        assert_eq!(locate(DOC, &[&f[..], &["[0]"]].concat()), Some((3, 59)));
        assert_eq!(locate(DOC, &[&f[..], &["[2]"]].concat()), Some((3, 81)));
        assert_eq!(locate(DOC, &[&f[..], &["[3]"]].concat()), None);
        assert_eq!(locate(DOC, &["apps", "nope"]), None);
        assert_eq!(locate("[1,", &["[5]"]), None);
    }

    #[test]
    fn renders_paths() {
        assert_eq!(
            render(&["apps", "a", "functions", "[1]"]),
            "apps.a.functions[1]"
        );
    }
}
