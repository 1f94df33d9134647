//! `retort schema`: the JSON Schema of the formula format.

/// Prints the JSON Schema of formula files (generated from the same Rust
/// types the parser uses). Returns the exit status.
pub fn schema() -> u8 {
    match serde_json::to_string_pretty(&retort_formula::formula::json_schema()) {
        Ok(text) => {
            crate::out(&format!("{text}\n"));
            0
        }
        Err(error) => {
            eprintln!("error: cannot serialise the schema: {error}");
            crate::EXIT_FAILED
        }
    }
}
