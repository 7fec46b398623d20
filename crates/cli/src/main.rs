//! `pseudoform`: the command line. Only argument parsing and exit codes;
//! the work is [`pseudoform_cli::run::run`].

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use pseudoform_cli::output::Format;
use pseudoform_cli::remote::DEFAULT_RETRIES;
use pseudoform_cli::run::{self, Options, DEFAULT_CHUNK, DEFAULT_PARALLEL, EXIT_USAGE};
use pseudoform_core::PseudonymType;

/// pseudoform: pseudonymisation at the source for Dutch quality registries.
#[derive(Debug, Parser)]
#[command(name = "pseudoform", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Pseudonymise a CSV extract: validate every row, blind locally, obtain
    /// the temporary pseudonyms from the TTP, write a file and/or deliver to
    /// the registry. Exit codes: 0 done, 1 rows refused (see the report),
    /// 2 wrong command/mapping/file/checkpoint, 3 TTP or registry failed
    /// (resume with --resume).
    Batch(BatchArgs),
}

#[derive(Debug, clap::Args)]
struct BatchArgs {
    /// The CSV extract (UTF-8 or Windows-1252; `;`, `,`, tab or `|`; a header row).
    input: PathBuf,
    /// The mapping of columns to fields (TOML, docs/processors.md).
    #[arg(long, short)]
    mapping: PathBuf,
    /// The connection file: TTP, client key, provider, registry (TOML).
    #[arg(long, short)]
    connection: Option<PathBuf>,
    /// Only validate every row and write the report; nothing leaves the machine.
    #[arg(long, conflicts_with_all = ["output", "deliver", "resume"])]
    check: bool,
    /// Write the pseudonymised records here.
    #[arg(long, short)]
    output: Option<PathBuf>,
    /// The format of --output.
    #[arg(long, value_enum, default_value_t = Format::Csv)]
    format: Format,
    /// Deliver to the registry's batch endpoint.
    #[arg(long)]
    deliver: bool,
    /// The report of refused rows (row, field, code) [default: INPUT.report.csv].
    #[arg(long)]
    report: Option<PathBuf>,
    /// The checkpoint [default: INPUT.checkpoint.json].
    #[arg(long)]
    checkpoint: Option<PathBuf>,
    /// Resume the run of the checkpoint.
    #[arg(long)]
    resume: bool,
    /// Exit 0 although rows were refused.
    #[arg(long)]
    allow_refused: bool,
    /// Rows per TTP request and registry batch.
    #[arg(long, default_value_t = DEFAULT_CHUNK)]
    chunk: usize,
    /// Chunks in flight.
    #[arg(long, default_value_t = DEFAULT_PARALLEL)]
    parallel: usize,
    /// Retries of a TTP or registry call that was not answered or was busy.
    #[arg(long, default_value_t = DEFAULT_RETRIES)]
    retries: u32,
    /// Pseudonym types to make, comma-separated [default: all the registry allows].
    #[arg(long, value_delimiter = ',', value_parser = parse_type)]
    types: Vec<PseudonymType>,
    /// Types every row must have (beyond the registry's required ones); with --check, the types to check for.
    #[arg(long, value_delimiter = ',', value_parser = parse_type)]
    require: Vec<PseudonymType>,
    /// Also write the summary (JSON) to this file.
    #[arg(long)]
    summary: Option<PathBuf>,
    /// No progress bar.
    #[arg(long, short)]
    quiet: bool,
}

fn parse_type(code: &str) -> Result<PseudonymType, String> {
    code.trim().parse().map_err(|_| {
        format!(
            "`{code}` is not a pseudonym type code (NGGV, sNGGV, NGG, sNGG, C, RGG, GG, A, MRN, B)"
        )
    })
}

fn main() -> ExitCode {
    let Command::Batch(args) = Cli::parse().command;
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("pseudoform: cannot start: {e}");
            return ExitCode::from(EXIT_USAGE as u8);
        }
    };
    let summary_file = args.summary.clone();
    let options = Options {
        input: args.input,
        mapping: args.mapping,
        connection: args.connection,
        check: args.check,
        output: args.output,
        format: args.format,
        deliver: args.deliver,
        report: args.report,
        checkpoint: args.checkpoint,
        resume: args.resume,
        allow_refused: args.allow_refused,
        chunk_size: args.chunk,
        parallel: args.parallel,
        retries: args.retries,
        types: args.types,
        require: args.require,
        progress: !args.quiet,
    };
    match runtime.block_on(run::run(options)) {
        Ok(summary) => {
            let json = serde_json::to_string_pretty(&summary).unwrap_or_default();
            println!("{json}");
            if let Some(path) = summary_file {
                if let Err(e) = std::fs::write(&path, &json) {
                    eprintln!(
                        "pseudoform: the summary cannot be written to {}: {e}",
                        path.display()
                    );
                    return ExitCode::from(run::EXIT_REMOTE as u8);
                }
            }
            let refused = summary.counts.all_refused();
            if refused > 0 {
                eprintln!(
                    "pseudoform: {refused} {} refused; see {}",
                    if refused == 1 { "row" } else { "rows" },
                    summary.report.as_deref().unwrap_or("the report")
                );
            }
            ExitCode::from(summary.exit_code as u8)
        }
        Err(e) => {
            eprintln!("pseudoform: {e}");
            ExitCode::from(e.exit_code() as u8)
        }
    }
}
