//! `Serialize` and `Deserialize` for [`SessionId`] and [`Session`], with the `serde`
//! feature: save a session list and restore it later.
//!
//! An id is its hyphenated text. A session is a map of `id`, `name`, `project_path`
//! (a string), `created_at` and `updated_at` (each `{ secs_since_epoch,
//! nanos_since_epoch }`, serde's form of `SystemTime`). Deserializing validates like
//! [`SessionBuilder::build`](crate::SessionBuilder::build): the directory must still
//! exist, the name must be valid, and `updated_at` may not precede `created_at`.

use std::path::PathBuf;
use std::time::SystemTime;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::session::{canonical_dir, validate_name};
use crate::{Session, SessionId};

impl Serialize for SessionId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for SessionId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<SessionId, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        text.parse().map_err(D::Error::custom)
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

impl Serialize for Session {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        Stored {
            id: *self.id(),
            name: self.name().to_owned(),
            project_path: self.project_path().to_path_buf(),
            created_at: self.created_at(),
            updated_at: self.updated_at(),
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Session {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Session, D::Error> {
        let stored = Stored::deserialize(deserializer)?;
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
