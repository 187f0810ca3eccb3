//! Command line: parsing and dispatch to [`crate::commands`].

use crate::config::LogFormat;
use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// The crate version, the wire schema the build speaks and its features.
fn long_version() -> &'static str {
    static VERSION: std::sync::LazyLock<String> = std::sync::LazyLock::new(version_line);
    VERSION.as_str()
}

fn version_line() -> String {
    let build = if cfg!(feature = "torch") {
        "features: torch"
    } else {
        "collector-only build, no torch"
    };
    format!(
        "{} (wire schema v{}; {build})",
        env!("CARGO_PKG_VERSION"),
        crate::messages::SCHEMA_VERSION
    )
}

#[derive(Parser, Debug)]
#[command(name = "daisi", version = long_version(), about = "Distributed, AI-driven intrusion detection for Linux")]
pub struct Cli {
    /// Log format (overrides `log.format`).
    #[arg(long, global = true, value_enum)]
    pub log_format: Option<LogFormat>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the node until SIGINT/SIGTERM.
    Run(crate::commands::run::ConfigArgs),
    /// Validate the configuration and print every error (exit 2 on errors).
    CheckConfig(crate::commands::run::ConfigArgs),
    /// The fleet from its heartbeats: each node's role, version, uptime,
    /// last heartbeat, CPU, memory, queues, drops since the last look;
    /// silent nodes.
    Status(crate::commands::status::StatusArgs),
    /// Whether the node of this configuration runs: its last heartbeat in
    /// `heartbeat.health_file` is fresh (exit 0) or not (exit 1).
    Health(crate::commands::run::HealthArgs),
    /// Train a model.
    #[command(subcommand)]
    Train(Train),
    /// Record live syscalls per process into a directory (for training).
    #[command(subcommand)]
    Record(Record),
    /// The flows of a pcap file, as FlowMeter-compatible CSV.
    Flows(crate::commands::flows::FlowsArgs),
    /// Evaluate a model on a labelled dataset.
    #[command(subcommand)]
    Eval(Eval),
    /// Read the alerts a node wrote (its JSON Lines sink).
    #[command(subcommand)]
    Alerts(Alerts),
    /// Host profiles: what each program may do, and accepting a false alarm.
    #[command(subcommand)]
    Baseline(Baseline),
    /// Sigma rules: which a node would judge, and why the others not.
    #[command(subcommand)]
    Rules(Rules),
}

#[derive(Subcommand, Debug)]
pub enum Rules {
    /// Loads rule files or directories; prints the rules judged per log
    /// source and the others with their reasons.
    Check(crate::commands::rules::CheckArgs),
}

#[derive(Subcommand, Debug)]
pub enum Baseline {
    /// What each program of a host's profile may do (learnt and accepted).
    Show(crate::commands::baseline::ShowArgs),
    /// Folds a baseline finding (or an incident's) into the profile: the
    /// behaviour is allowed from now on, on running nodes too.
    Accept(crate::commands::baseline::AcceptArgs),
}

#[derive(Subcommand, Debug)]
pub enum Alerts {
    /// The alerts so far, filtered (folded repeats merged into their alert).
    List(crate::commands::alerts::ListArgs),
    /// The last alerts, then new ones as they come.
    Tail(crate::commands::alerts::TailArgs),
}

#[derive(Subcommand, Debug)]
pub enum Record {
    /// Capture syscalls with eBPF (needs root or CAP_BPF + CAP_PERFMON).
    Syscalls(crate::commands::record::RecordSyscallsArgs),
}

#[derive(Subcommand, Debug)]
pub enum Eval {
    /// The ADFA-LD protocol, with a STIDE baseline.
    Syscall(crate::commands::eval::EvalSyscallArgs),
    /// The flow classifier on labelled captures (`lab/lab.sh generate`):
    /// precision, recall, F1, ROC AUC, confusion counts, per attack kind.
    Network(crate::commands::network::EvalNetworkArgs),
    /// The host lab's figures (`lab/host.sh run` writes the alerts and
    /// phases): detection, time to the first alert, alerts per attack,
    /// false alarms per host-hour.
    Host(crate::commands::eval_host::EvalHostArgs),
    /// The log detector on recorded log files: per attack kind whether it
    /// was detected and by which rules; false alarms per host-hour.
    Logs(crate::commands::logs::EvalLogsArgs),
    /// The ATT&CK lab's figures (`lab/attack.sh run` writes the alerts and
    /// phases): per Atomic Red Team test whether an alert about its
    /// processes was raised, by which detectors; per technique and tactic;
    /// false alarms per host-hour with their 95 % upper bound.
    Attack(crate::commands::eval_attack::EvalAttackArgs),
    /// The Linux tests of an Atomic Red Team atomics folder, as the ATT&CK
    /// lab runs them (JSON Lines; inputs filled with their defaults; why a
    /// test is not run).
    Atomics(crate::commands::eval_attack::EvalAtomicsArgs),
}

#[derive(Subcommand, Debug)]
pub enum Train {
    /// Train the syscall model on normal traces.
    Syscall(crate::commands::train::TrainSyscallArgs),
    /// Train the flow classifier on labelled captures (`lab/lab.sh generate`).
    Network(crate::commands::network::TrainNetworkArgs),
    /// Mine the templates of recorded logs and their rates per minute (the
    /// log detector's host baseline).
    Logs(crate::commands::logs::TrainLogsArgs),
}

/// Parses the command line and runs the command.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Run(args) => crate::commands::run::run(&args, cli.log_format),
        Command::CheckConfig(args) => crate::commands::run::check_config(&args),
        Command::Health(args) => crate::commands::run::health(&args),
        Command::Status(args) => crate::commands::report(crate::commands::status::run(&args)),
        Command::Train(Train::Syscall(args)) => {
            crate::commands::init_logging("info", cli.log_format.unwrap_or_default());
            crate::commands::report(crate::commands::train::train_syscall(&args))
        }
        Command::Record(Record::Syscalls(args)) => {
            crate::commands::init_logging("info", cli.log_format.unwrap_or_default());
            crate::commands::report(crate::commands::record::record_syscalls(&args))
        }
        Command::Flows(args) => crate::commands::report(crate::commands::flows::run(&args)),
        Command::Eval(Eval::Syscall(args)) => {
            crate::commands::init_logging("info", cli.log_format.unwrap_or_default());
            crate::commands::report(crate::commands::eval::eval_syscall(&args))
        }
        Command::Alerts(Alerts::List(args)) => {
            crate::commands::report(crate::commands::alerts::list(&args).map(|_| ()))
        }
        Command::Baseline(Baseline::Show(args)) => {
            crate::commands::report(crate::commands::baseline::show(&args))
        }
        Command::Baseline(Baseline::Accept(args)) => {
            crate::commands::report(crate::commands::baseline::accept(&args).map(|_| ()))
        }
        Command::Alerts(Alerts::Tail(args)) => {
            crate::commands::report(crate::commands::alerts::tail(&args))
        }
        Command::Train(Train::Network(args)) => {
            crate::commands::init_logging("info", cli.log_format.unwrap_or_default());
            if args.leave_one_out {
                crate::commands::report(crate::commands::network::leave_one_out(&args).map(|_| ()))
            } else {
                crate::commands::report(crate::commands::network::train(&args).map(|_| ()))
            }
        }
        Command::Eval(Eval::Host(args)) => {
            crate::commands::report(crate::commands::eval_host::eval_host(&args).map(|_| ()))
        }
        Command::Train(Train::Logs(args)) => {
            crate::commands::init_logging("info", cli.log_format.unwrap_or_default());
            crate::commands::report(crate::commands::logs::train(&args).map(|_| ()))
        }
        Command::Eval(Eval::Attack(args)) => {
            crate::commands::report(crate::commands::eval_attack::run_attack(args))
        }
        Command::Eval(Eval::Atomics(args)) => {
            crate::commands::report(crate::commands::eval_attack::run_atomics(args))
        }
        Command::Eval(Eval::Logs(args)) => {
            crate::commands::report(crate::commands::logs::eval(&args).map(|_| ()))
        }
        Command::Rules(Rules::Check(args)) => {
            crate::commands::report(crate::commands::rules::check(&args))
        }
        Command::Eval(Eval::Network(args)) => {
            crate::commands::init_logging("info", cli.log_format.unwrap_or_default());
            crate::commands::report(crate::commands::network::eval(&args).map(|_| ()))
        }
    }
}
