//! Redis's memory, for the cluster's share of a session: `used_memory`
//! from `INFO memory`, read through the `redis` crate like the nodes use.

use super::super::AnyError;
use std::time::Duration;

/// How long connecting to Redis and its answer may take.
const DEADLINE: Duration = Duration::from_secs(5);

/// Redis's memory before and after the sessions logged in.
#[derive(Debug, serde::Serialize)]
pub struct RedisStats {
    pub used_memory_before_bytes: u64,
    pub used_memory_after_bytes: u64,
    pub bytes_per_session: u64,
}

impl RedisStats {
    pub fn new(before: u64, after: u64, sessions: usize) -> RedisStats {
        RedisStats {
            used_memory_before_bytes: before,
            used_memory_after_bytes: after,
            bytes_per_session: after.saturating_sub(before) / sessions.max(1) as u64,
        }
    }
}

/// `used_memory` of the Redis at `url`, in bytes.
pub async fn used_memory(url: &str) -> Result<u64, AnyError> {
    let client = redis::Client::open(url)?;
    let read = async {
        let mut connection = client.get_multiplexed_async_connection().await?;
        redis::cmd("INFO").arg("memory").query_async::<String>(&mut connection).await
    };
    let info = tokio::time::timeout(DEADLINE, read)
        .await
        .map_err(|_| format!("Redis at {url} did not answer"))??;
    parse_used_memory(&info).ok_or_else(|| format!("no used_memory in the INFO of {url}").into())
}

/// The `used_memory:N` line of an `INFO memory` reply.
fn parse_used_memory(info: &str) -> Option<u64> {
    info.lines().find_map(|l| l.trim().strip_prefix("used_memory:")).and_then(|v| v.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn used_memory_is_read_from_its_own_line_of_info() {
        let info = "# Memory\r\nused_memory:1048576\r\nused_memory_human:1.00M\r\nused_memory_rss:9\r\n";
        assert_eq!(parse_used_memory(info), Some(1_048_576));
        assert_eq!(parse_used_memory("# Memory\r\nused_memory_rss:9\r\n"), None);
        assert_eq!(RedisStats::new(1000, 3048, 2).bytes_per_session, 1024);
        assert_eq!(RedisStats::new(3000, 1000, 2).bytes_per_session, 0, "a shrink is no growth");
    }
}
