//! `imdb-lora completions SHELL`: the shell's completion script for every subcommand and
//! option, on stdout (written by `clap_complete` from the same definitions `--help` shows).

use clap::CommandFactory as _;

/// Print a shell completion script.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  imdb-lora completions bash > ~/.local/share/bash-completion/completions/imdb-lora
  imdb-lora completions zsh > ~/.zfunc/_imdb-lora
  imdb-lora completions fish > ~/.config/fish/completions/imdb-lora.fish")]
pub struct Args {
    /// The shell.
    #[arg(value_enum)]
    shell: clap_complete::Shell,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let mut command = crate::Cli::command();
    clap_complete::generate(
        args.shell,
        &mut command,
        "imdb-lora",
        &mut std::io::stdout().lock(),
    );
    Ok(())
}
