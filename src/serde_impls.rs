//! `Serialize` and `Deserialize` for [`SessionId`] and [`Session`], with the `serde`
//! feature: save a session list and restore it later.
//!
//! An id is its hyphenated text. A session is a map of `id`, `name`, `project_path`
//! (a string), `created_at` and `updated_at` (each `{ secs_since_epoch,
//! nanos_since_epoch }`, serde's form of `SystemTime`). Deserializing validates like
//! [`SessionBuilder::build`](crate::SessionBuilder::build): the directory must still
//! exist, the name must be valid, both times must lie between the UNIX epoch and the
//! end of the year 9999 UTC, and `updated_at` may not precede `created_at`.

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::session::{canonical_dir, validate_name};
use crate::{Session, SessionId};

#[cfg_attr(docsrs, doc(cfg(feature = "serde")))]
impl Serialize for SessionId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

#[cfg_attr(docsrs, doc(cfg(feature = "serde")))]
impl<'de> Deserialize<'de> for SessionId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<SessionId, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        text.parse().map_err(D::Error::custom)
    }
}

/// The last second of the year 9999 UTC (9999-12-31T23:59:59Z), in seconds after the
/// UNIX epoch: the latest `created_at` or `updated_at` a restored session may have,
/// with any nanoseconds within that second.
///
/// Serde accepts any time `SystemTime` can hold, up to its very maximum, where
/// [`Session::rename`] could not move `updated_at` forward any more. No real session
/// gets past the year 9999, and later times cannot be written in the four-digit-year
/// formats (RFC 3339, ISO 8601) a saved list is likely to be read or converted with, so
/// such a time means a corrupt or hostile file.
const LATEST_SECS: u64 = 253_402_300_799;

/// Checks a restored time lies between the UNIX epoch and the end of the year 9999.
fn check_time(field: &str, time: SystemTime) -> Result<(), String> {
    match time.duration_since(UNIX_EPOCH) {
        // Serde's form cannot say it (its seconds are unsigned); checked all the same.
        Err(_) => Err(format!("{field} is before the UNIX epoch")),
        Ok(since) if since.as_secs() > LATEST_SECS => {
            Err(format!("{field} is after the year 9999"))
        }
        Ok(_) => Ok(()),
    }
}

/// The stored form of a [`Session`].
#[derive(Serialize, Deserialize)]
#[serde(rename = "Session", deny_unknown_fields)]
struct Stored {
    id: SessionId,
    name: String,
    project_path: PathBuf,
    created_at: SystemTime,
    updated_at: SystemTime,
}

#[cfg_attr(docsrs, doc(cfg(feature = "serde")))]
impl Serialize for Session {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        Stored {
            id: self.id(),
            name: self.name().to_owned(),
            project_path: self.project_path().to_path_buf(),
            created_at: self.created_at(),
            updated_at: self.updated_at(),
        }
        .serialize(serializer)
    }
}

#[cfg_attr(docsrs, doc(cfg(feature = "serde")))]
impl<'de> Deserialize<'de> for Session {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Session, D::Error> {
        let stored = Stored::deserialize(deserializer)?;
        check_time("created_at", stored.created_at).map_err(D::Error::custom)?;
        check_time("updated_at", stored.updated_at).map_err(D::Error::custom)?;
        if stored.updated_at < stored.created_at {
            return Err(D::Error::custom("updated_at precedes created_at"));
        }
        let project_path = canonical_dir(&stored.project_path).map_err(D::Error::custom)?;
        let name = validate_name(stored.name).map_err(D::Error::custom)?;
        Ok(Session::restore(
            stored.id,
            name,
            project_path,
            (stored.created_at, stored.updated_at),
        ))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn times_from_the_epoch_to_the_end_of_the_year_9999_pass() {
        let last = UNIX_EPOCH + Duration::new(LATEST_SECS, 999_999_999);
        for time in [UNIX_EPOCH, SystemTime::now(), last] {
            assert_eq!(check_time("t", time), Ok(()));
        }
        let after = last + Duration::from_nanos(1);
        assert_eq!(
            check_time("updated_at", after),
            Err("updated_at is after the year 9999".to_owned())
        );
    }

    #[test]
    fn a_time_before_the_epoch_is_refused() {
        let before = UNIX_EPOCH - Duration::from_nanos(1);
        assert_eq!(
            check_time("created_at", before),
            Err("created_at is before the UNIX epoch".to_owned())
        );
    }
}
