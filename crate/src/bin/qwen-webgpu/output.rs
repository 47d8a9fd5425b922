//! Writing to stdout: a reader that went away (`| head`) ends output quietly.

use std::io::Write as _;

/// Writes to stdout and flushes, so streamed text shows as it comes.
pub fn write_stdout_flush(text: &str) -> Result<(), String> {
    write_stdout(text)?;
    match std::io::stdout().flush() {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.to_string()),
        _ => Ok(()),
    }
}

/// Writes to stdout; a reader that went away (`| head`) ends output quietly.
pub fn write_stdout(text: &str) -> Result<(), String> {
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.to_string()),
        _ => Ok(()),
    }
}
