//! `chaos-report <dir>`: the Markdown table of the scenario reports in
//! `<dir>` (see `apisix_operator_chaos_tests::report`), and with `--json
//! <file>` every report in one JSON array.

use std::path::PathBuf;
use std::process::ExitCode;

use apisix_operator_chaos_tests::report;
use clap::Parser;

#[derive(Parser)]
#[command(about = "Tabulates the chaos scenarios' reports")]
struct Args {
    /// The directory of `<scenario>-<seed>.json` reports.
    dir: PathBuf,
    /// Also write every report, as one JSON array, to this file.
    #[arg(long)]
    json: Option<PathBuf>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let reports = match report::read_all(&args.dir) {
        Ok(reports) => reports,
        Err(e) => {
            eprintln!("chaos-report: {}: {e}", args.dir.display());
            return ExitCode::FAILURE;
        }
    };
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&reports).expect("reports serialize");
        if let Err(e) = std::fs::write(path, text + "\n") {
            eprintln!("chaos-report: {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
    }
    print!("{}", report::markdown(&reports));
    if reports.iter().all(report::ScenarioReport::held) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
