fn main() -> std::process::ExitCode {
    daisi::cli::main()
}
