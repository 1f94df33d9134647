//! Text from an agent made fit for a phase file, a journal line or cron
//! mail: bounded, one line, no terminal escapes or control characters.

/// The most of an agent's reason that retort keeps: 4 KiB.
pub const REASON_CAP: usize = 4096;

/// `text` cleaned for a one-line record: ANSI/VT escape sequences removed
/// (by the `strip-ansi-escapes` crate), every other control character and
/// every run of white space made one space, trimmed, and cut at a
/// character boundary to at most `cap` bytes with `…` marking a cut.
pub fn one_line(text: &str, cap: usize) -> String {
    let stripped = strip_ansi_escapes::strip_str(text);
    let mut out = String::with_capacity(stripped.len().min(cap));
    let mut space = false;
    let mut cut = false;
    for c in stripped.chars() {
        if c.is_whitespace() || c.is_control() {
            space = !out.is_empty();
            continue;
        }
        let needed = c.len_utf8() + usize::from(space);
        if out.len() + needed > cap {
            cut = true;
            break;
        }
        if space {
            out.push(' ');
            space = false;
        }
        out.push(c);
    }
    if cut {
        while !out.is_empty() && out.len() + '…'.len_utf8() > cap {
            out.pop();
        }
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_controls_and_lines_go() {
        let text = "\u{1b}[31mred\u{1b}[0m\nPHASE:done\r\n\tnext\u{7}";
        assert_eq!(one_line(text, REASON_CAP), "red PHASE:done next");
    }

    #[test]
    fn long_text_is_cut_at_a_character_boundary() {
        let text = "é".repeat(5000);
        let cleaned = one_line(&text, 100);
        assert!(cleaned.len() <= 100, "{}", cleaned.len());
        assert!(cleaned.ends_with('…'));
        assert_eq!(one_line("short", 100), "short");
    }
}
