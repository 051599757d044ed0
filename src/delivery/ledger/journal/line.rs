//! One journal line: an [`Update`] as text, with a CRC-32 over the segment's name and the
//! line, so that a torn or stale line is never applied.

use crate::delivery::ledger::{State, Update};

fn checksum(segment: &str, body: &str) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(segment.as_bytes());
    h.update(body.as_bytes());
    h.finalize()
}

/// One line: `CRC BODY\n`, the body one of `S seq "message-id"`,
/// `O seq state attempts "detail"`, `U seq attempts resend-limit "detail"`.
pub(super) fn encode(segment: &str, update: &Update, out: &mut String) {
    use std::fmt::Write as _;
    let start = out.len();
    out.push_str("00000000 ");
    let body_start = out.len();
    let _ = match update {
        Update::Sending { seq, message_id } => {
            let _ = write!(out, "S {seq} ");
            push_quoted(out, message_id);
            Ok(())
        }
        Update::Started { seq } => write!(out, "T {seq}"),
        Update::Outcome {
            seq,
            state,
            attempts,
            detail,
        } => write!(out, "O {seq} {state} {attempts} ").map(|()| push_quoted(out, detail)),
        Update::Unknown {
            seq,
            attempts,
            detail,
            resend_limit,
        } => write!(out, "U {seq} {attempts} {resend_limit} ").map(|()| push_quoted(out, detail)),
    };
    let crc = checksum(segment, &out[body_start..]);
    let hex: [u8; 8] =
        std::array::from_fn(|i| b"0123456789abcdef"[(crc >> (28 - 4 * i)) as usize & 0xf]);
    out.replace_range(
        start..body_start - 1,
        std::str::from_utf8(&hex).unwrap_or("00000000"),
    );
    out.push('\n');
}

/// `text` as a JSON string: as it is between quotes when nothing needs escaping (SMTP
/// replies and Message-IDs nearly always), else through serde_json.
fn push_quoted(out: &mut String, text: &str) {
    if text
        .bytes()
        .all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\')
    {
        out.push('"');
        out.push_str(text);
        out.push('"');
    } else {
        out.push_str(&serde_json::to_string(text).unwrap_or_else(|_| "\"\"".into()));
    }
}

pub(super) fn decode(segment: &str, line: &str) -> Option<Update> {
    let (crc, body) = line.split_once(' ')?;
    if u32::from_str_radix(crc, 16).ok()? != checksum(segment, body) {
        return None;
    }
    let mut fields = body.splitn(5, ' ');
    let tag = fields.next()?;
    let seq: i64 = fields.next()?.parse().ok()?;
    let text = |s: Option<&str>| serde_json::from_str::<String>(s?).ok();
    Some(match tag {
        "S" => {
            let rest = body.splitn(3, ' ').nth(2)?;
            Update::Sending {
                seq,
                message_id: text(Some(rest))?,
            }
        }
        "T" if fields.next().is_none() => Update::Started { seq },
        "O" => {
            let state = State::parse(fields.next()?)?;
            let attempts = fields.next()?.parse().ok()?;
            Update::Outcome {
                seq,
                state,
                attempts,
                detail: text(fields.next())?,
            }
        }
        "U" => {
            let attempts = fields.next()?.parse().ok()?;
            let resend_limit = fields.next()?.parse().ok()?;
            Update::Unknown {
                seq,
                attempts,
                resend_limit,
                detail: text(fields.next())?,
            }
        }
        _ => return None,
    })
}
