//! The `portico` operator CLI; see `portico --help`.

fn main() -> std::process::ExitCode {
    portico::cli::main()
}
