//! Where a login token comes from, at start and whenever the server says
//! the current one is expiring (`token_expiring`, protocol v1.2): a file
//! read again each time (`--token-file`, which a deployment's credential
//! agent rewrites), a command whose standard output is the token
//! (`--token-command`), or a secret this process mints from (the desktop
//! app on its own embedded server). The headless peer and the app renew
//! with [`renew`]; without a source they let the session end, and say why.

use crate::sdk::Reply;
use std::path::PathBuf;
use std::time::Duration;

/// How long a token command may run before it counts as failed.
const COMMAND_DEADLINE: Duration = Duration::from_secs(10);
/// The most of a token command's output that is read (a token is short).
const MAX_TOKEN_BYTES: usize = 8_192;

/// Where tokens come from.
#[derive(Clone, PartialEq, Eq)]
pub enum TokenSource {
    /// A file holding the token (surrounding white space trimmed).
    File(PathBuf),
    /// A command line (split like a shell's words, run without a shell)
    /// that prints the token.
    Command(String),
    /// A server secret to mint tokens for `peer` from, each valid `ttl`.
    Mint {
        /// The secret (the embedded server's).
        secret: Vec<u8>,
        /// How long each minted token is valid.
        ttl: Duration,
    },
}

impl std::fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TokenSource::File(path) => write!(f, "File({})", path.display()),
            TokenSource::Command(command) => write!(f, "Command({command:?})"),
            // Never the secret itself.
            TokenSource::Mint { ttl, .. } => write!(f, "Mint {{ ttl: {ttl:?} }}"),
        }
    }
}

impl TokenSource {
    /// A fresh token for `peer_id`, or a sentence saying why there is none.
    pub async fn fetch(&self, peer_id: &str) -> Result<String, String> {
        let token = match self {
            TokenSource::File(path) => tokio::fs::read_to_string(path)
                .await
                .map_err(|e| format!("cannot read token file {}: {e}", path.display()))?,
            TokenSource::Command(command) => run_command(command).await?,
            TokenSource::Mint { secret, ttl } => {
                let expiry = crate::clock::unix_secs() + ttl.as_secs().max(1);
                crate::token::mint(secret, peer_id, expiry)
            }
        };
        let token = token.trim();
        if token.is_empty() {
            return Err(format!("{} gave an empty token", self.describe()));
        }
        Ok(token.to_owned())
    }

    /// The source in a few words, for messages.
    fn describe(&self) -> String {
        match self {
            TokenSource::File(path) => format!("token file {}", path.display()),
            TokenSource::Command(command) => format!("token command {command:?}"),
            TokenSource::Mint { .. } => "the local server's secret".into(),
        }
    }
}

/// Runs a token command under [`COMMAND_DEADLINE`]; its standard output,
/// or why it failed (not started, a non-zero exit, too slow).
async fn run_command(command: &str) -> Result<String, String> {
    let words = shlex::split(command).filter(|w| !w.is_empty()).ok_or("the token command cannot be split")?;
    let (program, args) = words.split_first().ok_or("the token command is empty")?;
    let child = tokio::process::Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(COMMAND_DEADLINE, child)
        .await
        .map_err(|_| format!("the token command {program} took over {COMMAND_DEADLINE:?}"))?
        .map_err(|e| format!("cannot run the token command {program}: {e}"))?;
    if !output.status.success() {
        return Err(format!("the token command {program} failed ({})", output.status));
    }
    let stdout = &output.stdout[..output.stdout.len().min(MAX_TOKEN_BYTES)];
    String::from_utf8(stdout.to_vec())
        .map_err(|_| format!("the token command {program} printed no UTF-8 token"))
}

/// Fetches a token for `peer_id` from `source` that differs from
/// `current` and hands it to `send` (the SDK's
/// [`Client::renew_token`](crate::sdk::Client::renew_token), or the app's
/// phone); returns the new token. A source that still
/// gives `current` (its agent has not rewritten it yet) is asked again
/// every [`RETRY`] for at most `within` (the time the token has left).
/// `Err` says what went wrong: the source, or the server's refusal.
pub async fn renew(
    source: &TokenSource,
    peer_id: &str,
    current: &str,
    within: Duration,
    send: impl Fn(&str) -> Reply<()>,
) -> Result<String, String> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let token = source.fetch(peer_id).await?;
        if token != current {
            send(&token).await.map_err(|e| format!("the server refused the renewed token: {e}"))?;
            return Ok(token);
        }
        if tokio::time::Instant::now() + RETRY >= deadline {
            return Err(format!("{} still gives the expiring token", source.describe()));
        }
        tokio::time::sleep(RETRY).await;
    }
}

/// How often a source that still gives the expiring token is asked again.
const RETRY: Duration = Duration::from_secs(1);

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn each_source_gives_a_trimmed_token_or_says_why_not() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("token");
        std::fs::write(&file, "  v1.1.abc \n").unwrap();
        assert_eq!(TokenSource::File(file.clone()).fetch("alice").await.unwrap(), "v1.1.abc");
        std::fs::write(&file, "v1.2.def").unwrap();
        assert_eq!(TokenSource::File(file.clone()).fetch("alice").await.unwrap(), "v1.2.def", "read again");
        let missing = TokenSource::File(dir.path().join("missing"));
        assert!(missing.fetch("alice").await.unwrap_err().contains("cannot read token file"));
        let command = TokenSource::Command("printf ' v1.3.ghi\\n'".into());
        assert_eq!(command.fetch("alice").await.unwrap(), "v1.3.ghi");
        let failing = TokenSource::Command("sh -c 'exit 4'".into());
        assert!(failing.fetch("alice").await.unwrap_err().contains("failed"));
        let empty = TokenSource::Command("true".into());
        assert!(empty.fetch("alice").await.unwrap_err().contains("empty token"));
        let secret = b"sixteen-bytes-or-more".to_vec();
        let minted = TokenSource::Mint { secret: secret.clone(), ttl: Duration::from_secs(60) }
            .fetch("alice")
            .await
            .unwrap();
        assert_eq!(crate::token::verify(&secret, "alice", &minted, crate::clock::unix_secs()), Ok(()));
        assert!(
            !format!("{:?}", TokenSource::Mint { secret, ttl: Duration::from_secs(1) }).contains("sixteen")
        );
    }
}
