//! Prepares Echo's DynamoDB tables: creates them if needed and stores an associations document.
//! For DynamoDB-compatible local servers (the faithful local mode) and first deployments.
//!
//! Reads the table names from `ECHO_CONNECTIONS_TABLE` / `ECHO_HISTORY_TABLE` and AWS settings
//! from the usual environment (`AWS_REGION`, `AWS_ENDPOINT_URL_DYNAMODB`, credentials).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use echo_aws::config::Config;
use echo_aws::store::dynamodb::DynamoStore;
use echo_core::associations::Associations;
use echo_core::store::AssociationsStore;

#[derive(Parser)]
#[command(about = "Create Echo's DynamoDB tables and store associations")]
struct Args {
    /// Create the tables (on-demand) if they do not exist.
    #[arg(long)]
    create_tables: bool,
    /// Associations file to validate and store.
    #[arg(long)]
    associations: Option<PathBuf>,
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let config = Config::from_env()?;
    let sdk = Config::sdk().await;
    let store = Arc::new(DynamoStore::new(
        echo_aws::DynamoClient::new(&sdk),
        config.tables(),
    ));
    if args.create_tables {
        store.create_tables().await?;
        println!(
            "tables {} and {} are ready",
            config.connections_table, config.history_table
        );
    }
    if let Some(path) = args.associations {
        let text =
            std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let parsed = Associations::parse(&text, &|_| true)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        store.save_associations(parsed.source()).await?;
        println!(
            "stored associations from {} (functions: {})",
            path.display(),
            parsed.function_names().join(", ")
        );
    }
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    match run(Args::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
