//! `with-postgres COMMAND [ARGS…]`: runs a command (a test run) with a
//! PostgreSQL server of its own, started in a temporary folder and stopped
//! after it ([`pseudoform_testkit::postgres::Postgres`]), its port in
//! [`RUN_PORT_ENV`]: the TTPs the tests configure then keep their ledger
//! and key versions there. `./build.sh test` runs the TTP's tests so.

use std::process::{Command, ExitCode};

use pseudoform_testkit::postgres::{Postgres, RUN_PORT_ENV};

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let Some(program) = args.next() else {
        eprintln!("usage: with-postgres COMMAND [ARGS…]");
        return ExitCode::from(2);
    };
    let pg = Postgres::start();
    let status = Command::new(&program)
        .args(args)
        .env(RUN_PORT_ENV, pg.port().to_string())
        .status();
    drop(pg);
    match status {
        Ok(s) if s.success() => ExitCode::SUCCESS,
        Ok(s) => ExitCode::from(u8::try_from(s.code().unwrap_or(1)).unwrap_or(1)),
        Err(e) => {
            eprintln!("with-postgres: cannot run {program}: {e}");
            ExitCode::from(2)
        }
    }
}
