//! A tolerant parser for `WWW-Authenticate` header values (RFC 9110 §11.6.1): one value may hold
//! several challenges, `Scheme token68` or `Scheme name=value, name="quoted", ...`, separated by
//! commas. Malformed input yields fewer challenges, never a panic.

/// One challenge: its scheme and its auth-params (names lower-cased, values unquoted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthChallenge {
    pub scheme: String,
    pub token68: Option<String>,
    pub params: Vec<(String, String)>,
}

impl AuthChallenge {
    /// The first parameter named `name` (case-insensitive).
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn is_tchar(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c)
}

fn is_token68_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-._~+/".contains(c)
}

struct Lexer {
    chars: Vec<char>,
    pos: usize,
}

impl Lexer {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(' ' | '\t')) {
            self.pos += 1;
        }
    }

    fn skip_ws_and_commas(&mut self) {
        while matches!(self.peek(), Some(' ' | '\t' | ',')) {
            self.pos += 1;
        }
    }

    fn take_while(&mut self, f: impl Fn(char) -> bool) -> String {
        let start = self.pos;
        while self.peek().is_some_and(&f) {
            self.pos += 1;
        }
        self.chars[start..self.pos].iter().collect()
    }

    /// A quoted-string (the opening quote is at `pos`), unescaping `\x`.
    fn quoted(&mut self) -> String {
        self.pos += 1;
        let mut out = String::new();
        while let Some(c) = self.peek() {
            self.pos += 1;
            match c {
                '"' => return out,
                '\\' => {
                    if let Some(n) = self.peek() {
                        out.push(n);
                        self.pos += 1;
                    }
                }
                c => out.push(c),
            }
        }
        out
    }

    /// Whether the text at `pos` is `name =` (an auth-param), not a new scheme or a token68.
    fn at_param(&self) -> bool {
        let mut i = self.pos;
        while self.chars.get(i).is_some_and(|c| is_tchar(*c)) {
            i += 1;
        }
        if i == self.pos {
            return false;
        }
        while matches!(self.chars.get(i), Some(' ' | '\t')) {
            i += 1;
        }
        if self.chars.get(i) != Some(&'=') {
            return false;
        }
        // `abc==` is a token68 with padding, `abc=` followed by end or comma too.
        let mut j = i + 1;
        while matches!(self.chars.get(j), Some(' ' | '\t')) {
            j += 1;
        }
        !matches!(self.chars.get(j), None | Some('=' | ','))
    }
}

/// Parses every challenge in one header value.
pub fn parse(value: &str) -> Vec<AuthChallenge> {
    let mut lx = Lexer {
        chars: value.chars().collect(),
        pos: 0,
    };
    let mut out: Vec<AuthChallenge> = Vec::new();
    loop {
        lx.skip_ws_and_commas();
        let Some(c) = lx.peek() else { break };
        if out.last().is_some() && lx.at_param() {
            let name = lx.take_while(is_tchar).to_ascii_lowercase();
            lx.skip_ws();
            lx.pos += 1; // '='
            lx.skip_ws();
            let value = if lx.peek() == Some('"') {
                lx.quoted()
            } else {
                lx.take_while(|c| !matches!(c, ',' | ' ' | '\t'))
            };
            if let Some(last) = out.last_mut() {
                last.params.push((name, value));
            }
            continue;
        }
        if !is_tchar(c) {
            // Garbage: skip one character and resynchronise.
            lx.pos += 1;
            continue;
        }
        let scheme = lx.take_while(is_tchar);
        lx.skip_ws();
        let mut challenge = AuthChallenge {
            scheme,
            token68: None,
            params: Vec::new(),
        };
        if lx.peek().is_some_and(is_token68_char) && !lx.at_param() {
            let start = lx.pos;
            let t = lx.take_while(is_token68_char);
            let pad = lx.take_while(|c| c == '=');
            // A token68 is followed by a comma or the end; otherwise it was the next scheme.
            lx.skip_ws();
            if matches!(lx.peek(), None | Some(',')) {
                challenge.token68 = Some(t + &pad);
            } else {
                lx.pos = start;
            }
        }
        out.push(challenge);
    }
    out
}
