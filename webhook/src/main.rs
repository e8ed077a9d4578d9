use clap::{Parser, Subcommand};

/// Admission webhook that defaults and validates jockey-labelled Deployments, Services and Ingresses.
#[derive(Parser)]
#[command(name = "jockey-webhook", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Print the version.
    Version,
}

fn main() {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Version) => println!("jockey-webhook {}", env!("CARGO_PKG_VERSION")),
        None => {
            eprintln!("jockey-webhook: the server is not implemented yet; see --help");
            std::process::exit(2);
        }
    }
}
