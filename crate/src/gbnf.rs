//! WebLLM's `grammar` response format: GBNF (llama.cpp's EBNF dialect: `name ::= ...` rules,
//! literals, character classes, `.`, groups, alternation, `? * +` and `{m,n}` repetition, `#`
//! comments) translated into llguidance's Lark, construct by construct. What has no faithful
//! translation (token references `<...>`, unknown escapes) is refused with an error naming it.

use std::collections::BTreeSet;
use std::fmt::Write;

/// Why a GBNF grammar could not be translated.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("GBNF line {line}: {message}")]
pub struct GbnfError {
    pub line: usize,
    pub message: String,
}

/// The Lark grammar equivalent to `gbnf`, whose `root` rule is the start.
pub fn gbnf_to_lark(gbnf: &str) -> Result<String, GbnfError> {
    let mut parser = Parser {
        chars: gbnf.chars().collect(),
        pos: 0,
        referenced: BTreeSet::new(),
    };
    let mut defined = BTreeSet::new();
    let mut lark = String::from("start: g_root\n");
    loop {
        parser.skip_space(true);
        if parser.peek().is_none() {
            break;
        }
        let name = parser.name()?;
        if !defined.insert(name.clone()) {
            return Err(parser.error(format!("rule {name} is defined twice")));
        }
        parser.skip_space(false);
        parser.expect("::=")?;
        parser.skip_space(true);
        let body = parser.alternatives(false)?;
        parser.skip_space(false);
        if !matches!(parser.peek(), None | Some('\n' | '\r')) {
            return Err(parser.unexpected());
        }
        let _ = writeln!(lark, "{}: {body}", rule_name(&name));
    }
    if !defined.contains("root") {
        return Err(GbnfError {
            line: 1,
            message: "the grammar has no root rule".into(),
        });
    }
    if let Some(missing) = parser.referenced.difference(&defined).next() {
        return Err(GbnfError {
            line: 1,
            message: format!("rule {missing} is used but never defined"),
        });
    }
    Ok(lark)
}

/// A GBNF rule name as a Lark rule name: lowercase, behind a prefix (GBNF names may start with
/// a digit or a capital, which Lark reads as a terminal); `_` + lowercase marks a capital, as
/// GBNF names have no `_` of their own.
fn rule_name(name: &str) -> String {
    let mut out = String::from("g_");
    for c in name.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// A character inside a Lark regex class: always escaped, so no character is special.
fn class_char(c: char) -> String {
    format!("\\x{{{:x}}}", c as u32)
}

struct Parser {
    chars: Vec<char>,
    pos: usize,
    referenced: BTreeSet<String>,
}

impl Parser {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn line(&self) -> usize {
        1 + self.chars[..self.pos.min(self.chars.len())]
            .iter()
            .filter(|&&c| c == '\n')
            .count()
    }

    fn error(&self, message: String) -> GbnfError {
        GbnfError {
            line: self.line(),
            message,
        }
    }

    fn unexpected(&self) -> GbnfError {
        match self.peek() {
            Some(c) => self.error(format!("unexpected {c:?}")),
            None => self.error("unexpected end of the grammar".into()),
        }
    }

    /// Skips blanks and comments, and line ends where `newlines` allows them (inside a group,
    /// after `|` and between rules, as llama.cpp reads GBNF).
    fn skip_space(&mut self, newlines: bool) {
        while let Some(c) = self.peek() {
            match c {
                ' ' | '\t' => self.pos += 1,
                '\n' | '\r' if newlines => self.pos += 1,
                '#' => {
                    while self.peek().is_some_and(|c| c != '\n') {
                        self.pos += 1;
                    }
                }
                _ => break,
            }
        }
    }

    fn expect(&mut self, text: &str) -> Result<(), GbnfError> {
        for expected in text.chars() {
            if self.peek() != Some(expected) {
                return Err(self.error(format!("expected {text:?}")));
            }
            self.pos += 1;
        }
        Ok(())
    }

    fn name(&mut self) -> Result<String, GbnfError> {
        let start = self.pos;
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '-')
        {
            self.pos += 1;
        }
        if start == self.pos {
            return Err(self.unexpected());
        }
        Ok(self.chars[start..self.pos].iter().collect())
    }

    fn alternatives(&mut self, nested: bool) -> Result<String, GbnfError> {
        let mut out = self.sequence(nested)?;
        while self.peek() == Some('|') {
            self.pos += 1;
            self.skip_space(true);
            out.push_str(" | ");
            out.push_str(&self.sequence(nested)?);
        }
        Ok(out)
    }

    fn sequence(&mut self, nested: bool) -> Result<String, GbnfError> {
        let mut items: Vec<String> = Vec::new();
        loop {
            let item =
                match self.peek() {
                    Some('"') => self.literal()?,
                    Some('[') => self.class()?,
                    Some('.') => {
                        self.pos += 1;
                        "/(?s:.)/".to_owned()
                    }
                    Some('(') => {
                        self.pos += 1;
                        self.skip_space(true);
                        let inner = self.alternatives(true)?;
                        self.skip_space(true);
                        self.expect(")")?;
                        format!("({inner})")
                    }
                    Some('<') => return Err(self.error(
                        "token references (<...>) cannot be enforced: the grammar works on text"
                            .into(),
                    )),
                    Some(c) if c.is_ascii_alphanumeric() || c == '-' => {
                        let name = self.name()?;
                        let lark = rule_name(&name);
                        self.referenced.insert(name);
                        lark
                    }
                    Some('|' | ')' | '\n' | '\r') | None => break,
                    Some(_) => return Err(self.unexpected()),
                };
            self.skip_space(nested);
            let quantifier = self.quantifier()?;
            items.push(item + &quantifier);
            self.skip_space(nested);
        }
        // An empty alternative matches the empty string.
        Ok(if items.is_empty() {
            "\"\"".to_owned()
        } else {
            items.join(" ")
        })
    }

    /// `?`, `*`, `+` or `{m}`, `{m,}`, `{m,n}`, `{,n}` after an item, if any.
    fn quantifier(&mut self) -> Result<String, GbnfError> {
        match self.peek() {
            Some(op @ ('?' | '*' | '+')) => {
                self.pos += 1;
                Ok(op.to_string())
            }
            Some('{') => {
                self.pos += 1;
                let mut body = String::new();
                while let Some(c) = self.peek().filter(|&c| c != '}') {
                    if !(c.is_ascii_digit() || c == ',' || c == ' ') {
                        return Err(self.error(format!("unexpected {c:?} in a repetition")));
                    }
                    body.push(c);
                    self.pos += 1;
                }
                self.expect("}")?;
                let parts: Vec<&str> = body.split(',').map(str::trim).collect();
                let number = |s: &str| s.parse::<u32>().ok();
                let ok = match parts.as_slice() {
                    [m] => number(m).is_some_and(|m| m > 0),
                    [m, n] => {
                        (m.is_empty() || number(m).is_some())
                            && (n.is_empty() || number(n).is_some_and(|n| n > 0))
                    }
                    _ => false,
                };
                if !ok {
                    return Err(self.error(format!("repetition {{{body}}} is not {{m}}, {{m,}} or {{m,n}} with a maximum above 0")));
                }
                Ok(format!("{{{}}}", parts.join(",")))
            }
            _ => Ok(String::new()),
        }
    }

    /// One character of a literal or class, escapes decoded.
    fn char(&mut self) -> Result<char, GbnfError> {
        let Some(c) = self.peek() else {
            return Err(self.unexpected());
        };
        self.pos += 1;
        if c != '\\' {
            return Ok(c);
        }
        let Some(e) = self.peek() else {
            return Err(self.unexpected());
        };
        self.pos += 1;
        let hex_digits = match e {
            'n' => return Ok('\n'),
            'r' => return Ok('\r'),
            't' => return Ok('\t'),
            '\\' | '"' | '[' | ']' | '-' | '^' => return Ok(e),
            'x' => 2,
            'u' => 4,
            'U' => 8,
            other => return Err(self.error(format!("unknown escape \\{other}"))),
        };
        let digits: String = self
            .chars
            .get(self.pos..self.pos + hex_digits)
            .unwrap_or_default()
            .iter()
            .collect();
        self.pos += hex_digits;
        u32::from_str_radix(&digits, 16)
            .ok()
            .filter(|_| digits.len() == hex_digits)
            .and_then(char::from_u32)
            .ok_or_else(|| self.error(format!("\\{e}{digits} is not a character")))
    }

    fn literal(&mut self) -> Result<String, GbnfError> {
        self.pos += 1;
        let mut text = String::new();
        while self.peek() != Some('"') {
            if matches!(self.peek(), None | Some('\n')) {
                return Err(self.error("a literal is not closed".into()));
            }
            text.push(self.char()?);
        }
        self.pos += 1;
        Ok(serde_json::Value::String(text).to_string())
    }

    fn class(&mut self) -> Result<String, GbnfError> {
        self.pos += 1;
        let mut out = String::from("/[");
        if self.peek() == Some('^') {
            self.pos += 1;
            out.push('^');
        }
        let mut empty = true;
        while self.peek() != Some(']') {
            if self.peek().is_none() {
                return Err(self.error("a character class is not closed".into()));
            }
            let first = self.char()?;
            out.push_str(&class_char(first));
            if self.peek() == Some('-') && self.chars.get(self.pos + 1) != Some(&']') {
                self.pos += 1;
                let last = self.char()?;
                if last < first {
                    return Err(self.error(format!("the range {first:?}-{last:?} is backwards")));
                }
                out.push('-');
                out.push_str(&class_char(last));
            }
            empty = false;
        }
        self.pos += 1;
        if empty {
            return Err(self.error("an empty character class matches nothing".into()));
        }
        out.push_str("]/");
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn translates_each_construct() {
        assert_eq!(
            gbnf_to_lark("root ::= \"yes\" | \"no\"").unwrap(),
            "start: g_root\ng_root: \"yes\" | \"no\"\n"
        );
        let lark = gbnf_to_lark(
            "# a comment\nroot ::= (Item \",\" )+ item? [^\\n]* .\nItem ::= [a-z0-9]{2,5}\nitem ::=\n  \"\\x41\\u00e9\\\"\" |\n  # nothing\n",
        )
        .unwrap();
        assert_eq!(
            lark,
            "start: g_root\n\
             g_root: (g__item \",\")+ g_item? /[^\\x{a}]/* /(?s:.)/\n\
             g__item: /[\\x{61}-\\x{7a}\\x{30}-\\x{39}]/{2,5}\n\
             g_item: \"Aé\\\"\" | \"\"\n"
        );
        assert!(gbnf_to_lark("root ::= x{3} x{1,} x{,4}\nx ::= \"a\"")
            .unwrap()
            .contains("g_x{3} g_x{1,} g_x{,4}"));
    }

    #[test]
    fn refuses_what_it_cannot_enforce_naming_it() {
        let err = |g: &str| gbnf_to_lark(g).unwrap_err().to_string();
        assert_eq!(
            err("a ::= \"x\""),
            "GBNF line 1: the grammar has no root rule"
        );
        assert_eq!(
            err("root ::= a"),
            "GBNF line 1: rule a is used but never defined"
        );
        assert!(err("root ::= <|im_end|>").contains("token references"));
        assert_eq!(err("root ::= \"\\q\""), "GBNF line 1: unknown escape \\q");
        assert_eq!(
            err("root ::= \"a\"\nroot ::= \"b\""),
            "GBNF line 2: rule root is defined twice"
        );
        assert!(err("root ::= [z-a]").contains("backwards"));
        assert!(err("root ::= []").contains("empty character class"));
        assert!(err("root ::= \"a\"{0}").contains("repetition"));
        assert!(err("root ::= (\"a\"").contains("expected \")\""));
        assert!(err("root = \"a\"").contains("expected \"::=\""));
    }
}
