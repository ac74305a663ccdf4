//! `eventshop accounts create-admin`: the only way to an admin account; `eventshop accounts
//! erase ID`: the right to erasure from the terminal.

use std::io::BufRead;

use anyhow::Context;
use clap::Subcommand;
use domain::account::Role;
use domain::{Email, Name};
use eventstore_config::{Settings, Store};

/// Account administration.
#[derive(Debug, Subcommand)]
pub enum AccountsCommand {
    /// Register an admin account (with a wallet and the policy `<id>:*:*:*`) and print its id.
    /// The password comes from EVENTSHOP_ADMIN_PASSWORD, else from the first line of stdin.
    CreateAdmin {
        /// The admin's e-mail address.
        #[arg(long)]
        email: String,
        /// Display name.
        #[arg(long, default_value = "Admin")]
        name: String,
    },
    /// Erase an account's personal data (e-mail, name, password hash: its key is deleted) and
    /// delete it; its e-mail can register again. Erasing an erased account changes nothing.
    Erase {
        /// The account id.
        id: String,
    },
}

/// Runs an `accounts` subcommand.
pub async fn run(settings: Settings, store: Store, command: AccountsCommand) -> anyhow::Result<()> {
    match command {
        AccountsCommand::CreateAdmin { email, name } => {
            let email = Email::parse(&email).context("invalid --email")?;
            let name = Name::parse(&name).context("invalid --name")?;
            let password = password()?;
            let app = command_api::build(settings, store.clone()).await?;
            let registered = application::accounts::register(
                app.state().app(),
                &application::Origin::default(),
                application::accounts::Registration {
                    email,
                    name,
                    password,
                    role: Role::Admin,
                },
                None,
            )
            .await
            .map_err(|e| match e {
                application::AppError::Rejected(rejected) => anyhow::anyhow!("{rejected}"),
                other => anyhow::anyhow!("{other:#}"),
            })
            .context("cannot create the admin")?;
            println!("{}", registered.account_id);
            drop(app);
            store.close().await;
            Ok(())
        }
        AccountsCommand::Erase { id } => erase(settings, store, &id).await,
    }
}

/// Erases account `id` (actor `system`); prints what it did.
async fn erase(settings: Settings, store: Store, id: &str) -> anyhow::Result<()> {
    use domain::account::{AccountError, AccountServices};
    use eventstore_config::{CommandBus, CommandError, EventMetadata, SqlEmailRegistry};
    let id = uuid::Uuid::parse_str(id)
        .map_err(|_| anyhow::anyhow!("not an account id (a UUID): {id:?}"))?
        .to_string();
    let bus = CommandBus::new(store.clone(), &settings);
    let services = AccountServices::new(std::sync::Arc::new(SqlEmailRegistry::new(store.clone())));
    let erased = application::accounts::erase(&bus, &services, &id, &EventMetadata::system()).await;
    store.close().await;
    match erased {
        Ok(committed) if committed.position.is_some() => {
            println!("erased account {id} (version {})", committed.version);
            Ok(())
        }
        Ok(_) => {
            println!("account {id} was already erased");
            Ok(())
        }
        Err(CommandError::Rejected(AccountError::NotRegistered)) => {
            anyhow::bail!("no account {id}")
        }
        Err(error) => Err(anyhow::Error::new(error).context(format!("erasing account {id}"))),
    }
}

fn password() -> anyhow::Result<String> {
    if let Ok(password) = std::env::var("EVENTSHOP_ADMIN_PASSWORD") {
        return Ok(password);
    }
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("reading the password from stdin")?;
    let password = line.trim_end_matches(['\r', '\n']).to_owned();
    if password.is_empty() {
        anyhow::bail!("no password: set EVENTSHOP_ADMIN_PASSWORD or pass it on stdin");
    }
    Ok(password)
}
