//! Tokens that end (protocol v1.2), in the app: when the server says the
//! session's token is expiring, the app fetches a fresh one from the
//! session's source (minted from the local server's secret, `--token-file`
//! read again, or `--token-command`) and renews; without a source, or when
//! renewing fails, it says so, and the session ends at the expiry with the
//! reason on the sign-in form.

use super::{App, Message};
use iced::Task;
use std::time::Duration;

impl App {
    /// `token_expiring` for the current session: renew from its source.
    pub(super) fn on_token_expiring(&mut self, expires_in: Duration) -> Task<Message> {
        let Some(session) = self.link.session() else { return Task::none() };
        let Some(source) = session.tokens.source.clone() else {
            self.notice = Some(format!(
                "Your sign-in token expires in {} s and there is no way to renew it here \
                 (--token-file or --token-command); you will be signed out then.",
                expires_in.as_secs()
            ));
            return Task::none();
        };
        let (number, phone, current) =
            (session.number, session.phone.clone(), session.tokens.current.clone());
        let peer_id = session.credentials.peer_id.clone();
        Task::perform(
            async move {
                let send = |token: &str| phone.renew_token(token);
                softphone_core::token::source::renew(&source, &peer_id, &current, expires_in, send).await
            },
            move |result| Message::TokenRenewed(number, result),
        )
    }

    /// How renewing went: the new token is the session's; a failure is said.
    pub(super) fn on_token_renewed(&mut self, number: u64, result: Result<String, String>) -> Task<Message> {
        let Some(session) = self.link.session_mut().filter(|s| s.number == number) else {
            return Task::none();
        };
        match result {
            Ok(token) => session.tokens.current = token,
            Err(why) => {
                self.notice = Some(format!(
                    "Could not renew the sign-in token ({why}); you will be signed out when it expires."
                ))
            }
        }
        Task::none()
    }
}
