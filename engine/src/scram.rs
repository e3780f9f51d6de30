//! SCRAM credentials (KIP-554): what AlterUserScramCredentials stores and
//! DescribeUserScramCredentials reports, with Kafka's (KRaft controller's) rules.
//!
//! A credential is kept per user and per mechanism (SCRAM-SHA-256, SCRAM-SHA-512) as RFC 5802
//! has a server keep it: the salt, the iteration count, `StoredKey = H(HMAC(SaltedPassword,
//! "Client Key"))` and `ServerKey = HMAC(SaltedPassword, "Server Key")`. Clients send the salted
//! password; it is turned into the two keys at once and never stored, so the metadata file is
//! enough to verify a login but not to make one.
//!
//! The credentials live in the cluster metadata ([`crate::metadata::ClusterState`]): the
//! controller changes them ([`ScramCredentials::alter`]) and every shard describes them from its
//! metadata image ([`ScramCredentials::describe`]).

use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256, Sha512};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;

/// The fewest iterations Kafka accepts for either mechanism (`ScramMechanism.minIterations`).
pub const MIN_ITERATIONS: i32 = 4096;
/// The most iterations Kafka's controller accepts (`ScramControlManager.MAX_ITERATIONS`).
pub const MAX_ITERATIONS: i32 = 16384;

/// A SCRAM mechanism, as Kafka numbers and names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ScramMechanism {
    /// SCRAM-SHA-256 (wire type 1).
    #[serde(rename = "SCRAM-SHA-256")]
    Sha256,
    /// SCRAM-SHA-512 (wire type 2).
    #[serde(rename = "SCRAM-SHA-512")]
    Sha512,
}

impl ScramMechanism {
    /// The mechanism with wire type `code`, if Kafka knows it (0 is Kafka's UNKNOWN).
    pub fn from_type(code: i8) -> Option<ScramMechanism> {
        match code {
            1 => Some(ScramMechanism::Sha256),
            2 => Some(ScramMechanism::Sha512),
            _ => None,
        }
    }

    /// The wire type of this mechanism.
    pub fn type_code(self) -> i8 {
        match self {
            ScramMechanism::Sha256 => 1,
            ScramMechanism::Sha512 => 2,
        }
    }

    /// (StoredKey, ServerKey) for `salted_password`, with this mechanism's hash.
    fn keys(self, salted_password: &[u8]) -> Result<(Vec<u8>, Vec<u8>), ScramAlterError> {
        match self {
            ScramMechanism::Sha256 => keys::<Hmac<Sha256>, Sha256>(salted_password),
            ScramMechanism::Sha512 => keys::<Hmac<Sha512>, Sha512>(salted_password),
        }
    }
}

/// RFC 5802's StoredKey and ServerKey from a salted password, with HMAC `M` over hash `D`.
fn keys<M: Mac + KeyInit, D: Digest>(
    salted_password: &[u8],
) -> Result<(Vec<u8>, Vec<u8>), ScramAlterError> {
    let hmac = |message: &[u8]| {
        let mut mac = <M as Mac>::new_from_slice(salted_password)
            .map_err(|_| ScramAlterError::KeyDerivation)?;
        mac.update(message);
        Ok::<_, ScramAlterError>(mac.finalize().into_bytes())
    };
    let client_key = hmac(b"Client Key")?;
    let stored_key = D::digest(&client_key).to_vec();
    let server_key = hmac(b"Server Key")?.to_vec();
    Ok((stored_key, server_key))
}

/// One user's credential for one mechanism: what a server needs to verify a SCRAM login.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScramCredential {
    /// The salt the client salted its password with.
    #[serde(with = "hex::serde")]
    pub salt: Vec<u8>,
    /// `H(HMAC(SaltedPassword, "Client Key"))`.
    #[serde(with = "hex::serde")]
    pub stored_key: Vec<u8>,
    /// `HMAC(SaltedPassword, "Server Key")`.
    #[serde(with = "hex::serde")]
    pub server_key: Vec<u8>,
    /// The iteration count the password was salted with.
    pub iterations: i32,
}

impl ScramCredential {
    /// The credential for a password salted (`Hi(password, salt, iterations)`) by the client.
    pub fn from_salted_password(
        mechanism: ScramMechanism,
        salt: &[u8],
        salted_password: &[u8],
        iterations: i32,
    ) -> Result<ScramCredential, ScramAlterError> {
        let (stored_key, server_key) = mechanism.keys(salted_password)?;
        Ok(ScramCredential {
            salt: salt.to_vec(),
            stored_key,
            server_key,
            iterations,
        })
    }
}

/// Keys stay out of logs, as Kafka's `ScramCredentialValue.toString` keeps them out.
impl fmt::Debug for ScramCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScramCredential")
            .field("iterations", &self.iterations)
            .finish_non_exhaustive()
    }
}

/// A deletion requested by AlterUserScramCredentials.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ScramDeletion {
    /// The user.
    pub user: String,
    /// The mechanism's wire type (validated by [`ScramCredentials::alter`]).
    pub mechanism: i8,
}

/// An upsertion requested by AlterUserScramCredentials.
#[derive(Clone, serde::Serialize, serde::Deserialize)]
pub struct ScramUpsertion {
    /// The user.
    pub user: String,
    /// The mechanism's wire type (validated by [`ScramCredentials::alter`]).
    pub mechanism: i8,
    /// The iteration count the password was salted with.
    pub iterations: i32,
    /// The salt.
    pub salt: Vec<u8>,
    /// `Hi(password, salt, iterations)`, from which the stored keys are derived.
    pub salted_password: Vec<u8>,
}

/// The salted password stays out of logs.
impl fmt::Debug for ScramUpsertion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScramUpsertion")
            .field("user", &self.user)
            .field("mechanism", &self.mechanism)
            .field("iterations", &self.iterations)
            .finish_non_exhaustive()
    }
}

/// Why a user's alteration was refused (messages as Kafka's controller words them).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
pub enum ScramAlterError {
    /// The user name is empty.
    #[error("Username must not be empty")]
    EmptyUserName,
    /// The mechanism is not SCRAM-SHA-256 or SCRAM-SHA-512.
    #[error("Unknown SCRAM mechanism")]
    UnknownMechanism,
    /// Fewer than [`MIN_ITERATIONS`] iterations.
    #[error("Too few iterations")]
    TooFewIterations,
    /// More than [`MAX_ITERATIONS`] iterations.
    #[error("Too many iterations")]
    TooManyIterations,
    /// The salt is empty.
    #[error("Salt must not be empty")]
    EmptySalt,
    /// The salted password is empty.
    #[error("Salted password must not be empty")]
    EmptySaltedPassword,
    /// The user appears more than once among the request's deletions and upsertions.
    #[error("A user credential cannot be altered twice in the same request")]
    AlteredTwice,
    /// A deletion names a credential that does not exist.
    #[error("Attempt to delete a user credential that does not exist")]
    NoSuchCredential,
    /// The HMAC could not be keyed with the salted password.
    #[error("The SCRAM keys could not be derived from the salted password")]
    KeyDerivation,
    /// The change was valid but the quorum did not commit it in time.
    #[error("{0}")]
    TimedOut(String),
    /// The controller could not be reached, or stopped being the active controller.
    #[error("{0}")]
    ControllerUnavailable(String),
}

/// One user's outcome of an AlterUserScramCredentials request.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ScramAlterOutcome {
    /// The user.
    pub user: String,
    /// Success, or why the user's alteration was refused.
    pub result: Result<(), ScramAlterError>,
}

/// Why a user could not be described (messages as Kafka's `ScramImage.describe` words them).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScramDescribeError {
    /// The request names the user more than once.
    #[error("Cannot describe SCRAM credentials for the same user twice in a single request: {0}")]
    DuplicateUser(String),
    /// The user has no credential.
    #[error("Attempt to describe a user credential that does not exist: {0}")]
    UnknownUser(String),
}

/// What DescribeUserScramCredentials reports of one credential (never the keys).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScramCredentialInfo {
    /// The mechanism.
    pub mechanism: ScramMechanism,
    /// The iteration count.
    pub iterations: i32,
}

/// One user's answer to DescribeUserScramCredentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserScramDescription {
    /// The user.
    pub user: String,
    /// The user's credentials (one per mechanism), or why there is no answer.
    pub result: Result<Vec<ScramCredentialInfo>, ScramDescribeError>,
}

/// Every user's SCRAM credentials, as the controller persists them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ScramCredentials {
    users: BTreeMap<String, BTreeMap<ScramMechanism, ScramCredential>>,
}

/// What an alteration will do to one user, once every entry of the request has been checked.
enum Planned {
    Delete(ScramMechanism),
    Upsert(ScramMechanism, ScramCredential),
    Refused(ScramAlterError),
}

impl ScramCredentials {
    /// True when no user has a credential.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    /// DescribeUserScramCredentials: the named users (all users when `users` is `None` or
    /// empty), one answer per distinct user in request order (all users: by name). A user named
    /// twice is DUPLICATE_RESOURCE, a user without credentials RESOURCE_NOT_FOUND.
    pub fn describe(&self, users: Option<&[&str]>) -> Vec<UserScramDescription> {
        let requested: Vec<&str> = match users {
            Some(users) if !users.is_empty() => users.to_vec(),
            _ => self.users.keys().map(String::as_str).collect(),
        };
        let mut times_named: HashMap<&str, usize> = HashMap::new();
        for user in &requested {
            *times_named.entry(user).or_default() += 1;
        }
        let mut answered = HashSet::new();
        requested
            .into_iter()
            .filter(|user| answered.insert(*user))
            .map(|user| UserScramDescription {
                user: user.to_string(),
                result: if times_named.get(user).is_some_and(|n| *n > 1) {
                    Err(ScramDescribeError::DuplicateUser(user.to_string()))
                } else {
                    self.describe_user(user)
                },
            })
            .collect()
    }

    fn describe_user(&self, user: &str) -> Result<Vec<ScramCredentialInfo>, ScramDescribeError> {
        match self.users.get(user) {
            Some(credentials) if !credentials.is_empty() => Ok(credentials
                .iter()
                .map(|(mechanism, c)| ScramCredentialInfo {
                    mechanism: *mechanism,
                    iterations: c.iterations,
                })
                .collect()),
            _ => Err(ScramDescribeError::UnknownUser(user.to_string())),
        }
    }

    /// AlterUserScramCredentials, as Kafka's controller applies it: every entry is checked
    /// against the credentials as they were before the request, a user named by more than one
    /// entry is refused (AlteredTwice) and the user's first refusal stands; the valid
    /// deletions and upsertions are then applied. One outcome per distinct user, in order of
    /// first appearance (deletions first).
    pub fn alter(
        &mut self,
        deletions: &[ScramDeletion],
        upsertions: &[ScramUpsertion],
    ) -> Vec<ScramAlterOutcome> {
        let mut planned: Vec<(&str, Planned)> = Vec::new();
        let mut position: HashMap<&str, usize> = HashMap::new();
        let entries = deletions
            .iter()
            .map(|d| (d.user.as_str(), self.check_deletion(d)))
            .chain(
                upsertions
                    .iter()
                    .map(|u| (u.user.as_str(), check_upsertion(u))),
            );
        for (user, checked) in entries {
            match position.get(user) {
                Some(&i) => {
                    if !matches!(planned[i].1, Planned::Refused(_)) {
                        planned[i].1 = Planned::Refused(ScramAlterError::AlteredTwice);
                    }
                }
                None => {
                    position.insert(user, planned.len());
                    planned.push((user, checked.unwrap_or_else(Planned::Refused)));
                }
            }
        }
        planned
            .into_iter()
            .map(|(user, plan)| {
                let result = match plan {
                    Planned::Delete(mechanism) => {
                        self.remove(user, mechanism);
                        Ok(())
                    }
                    Planned::Upsert(mechanism, credential) => {
                        self.users
                            .entry(user.to_string())
                            .or_default()
                            .insert(mechanism, credential);
                        Ok(())
                    }
                    Planned::Refused(e) => Err(e),
                };
                ScramAlterOutcome {
                    user: user.to_string(),
                    result,
                }
            })
            .collect()
    }

    fn check_deletion(&self, d: &ScramDeletion) -> Result<Planned, ScramAlterError> {
        let mechanism = check_user_and_mechanism(&d.user, d.mechanism)?;
        let exists = self
            .users
            .get(&d.user)
            .is_some_and(|m| m.contains_key(&mechanism));
        if !exists {
            return Err(ScramAlterError::NoSuchCredential);
        }
        Ok(Planned::Delete(mechanism))
    }

    fn remove(&mut self, user: &str, mechanism: ScramMechanism) {
        if let Some(credentials) = self.users.get_mut(user) {
            credentials.remove(&mechanism);
            if credentials.is_empty() {
                self.users.remove(user);
            }
        }
    }
}

fn check_upsertion(u: &ScramUpsertion) -> Result<Planned, ScramAlterError> {
    let mechanism = check_user_and_mechanism(&u.user, u.mechanism)?;
    if u.iterations < MIN_ITERATIONS {
        return Err(ScramAlterError::TooFewIterations);
    }
    if u.iterations > MAX_ITERATIONS {
        return Err(ScramAlterError::TooManyIterations);
    }
    if u.salt.is_empty() {
        return Err(ScramAlterError::EmptySalt);
    }
    if u.salted_password.is_empty() {
        return Err(ScramAlterError::EmptySaltedPassword);
    }
    let credential = ScramCredential::from_salted_password(
        mechanism,
        &u.salt,
        &u.salted_password,
        u.iterations,
    )?;
    Ok(Planned::Upsert(mechanism, credential))
}

fn check_user_and_mechanism(user: &str, mechanism: i8) -> Result<ScramMechanism, ScramAlterError> {
    if user.is_empty() {
        return Err(ScramAlterError::EmptyUserName);
    }
    ScramMechanism::from_type(mechanism).ok_or(ScramAlterError::UnknownMechanism)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        hex::decode(s).unwrap()
    }

    fn hmac_sha256(key: &[u8], message: &[u8]) -> Vec<u8> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap();
        mac.update(message);
        mac.finalize().into_bytes().to_vec()
    }

    /// RFC 7677's example exchange (user "user", password "pencil", 4096 iterations): the keys
    /// derived from its salted password must verify the client's proof and produce the
    /// server's signature the RFC shows.
    #[test]
    fn sha256_keys_match_rfc_7677() {
        // base64 W22ZaJ0SNY7soEsUEjb6gQ==
        let salt = hex("5b6d99689d12358eeca04b141236fa81");
        // Hi("pencil", salt, 4096) with HMAC-SHA-256 (PBKDF2).
        let salted = hex("c4a49510323ab4f952cac1fa99441939e78ea74d6be81ddf7096e87513dc615d");
        let c = ScramCredential::from_salted_password(ScramMechanism::Sha256, &salt, &salted, 4096)
            .unwrap();
        assert_eq!(c.salt, salt);
        let auth_message = b"n=user,r=rOprNGfwEbeRWgbNEkqO,\
            r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,\
            c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
        // v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=
        let server_signature =
            hex("eabae24d1062db75a9451ff0b6ea7e98c8546549ff741e672d3251b2397de46e");
        assert_eq!(hmac_sha256(&c.server_key, auth_message), server_signature);
        // p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=
        let client_proof = hex("747cdb65aa56224e2352137e52d7bdcad6a0f738df30782caa69a2cfb0277554");
        let client_signature = hmac_sha256(&c.stored_key, auth_message);
        let client_key: Vec<u8> = client_proof
            .iter()
            .zip(&client_signature)
            .map(|(p, s)| p ^ s)
            .collect();
        assert_eq!(Sha256::digest(&client_key).to_vec(), c.stored_key);
        assert_eq!(
            c.stored_key,
            hex("586e5df283e6dceb5c3e791d8b8528ec191e664045ce971792e2e6b5bb13e2a6")
        );
        assert_eq!(
            c.server_key,
            hex("c1f3cbc1c13a9d35a14c0990eed97629ea225863e566a4314ab99f3f00e5d9d5")
        );
    }

    /// SCRAM-SHA-512 keys of Hi("pencil", "salt", 4096), as Python's hashlib computes them.
    #[test]
    fn sha512_keys_match_an_independent_implementation() {
        let salted = hex(
            "2cfe3a1c151662b1ea49d13f595674a1c666add70df15d3d02254e9905993878\
             261da7407fd11c2fee4b0a30df5154b1a752f86a13380ddd4bdd9a7c958ec769",
        );
        let c =
            ScramCredential::from_salted_password(ScramMechanism::Sha512, b"salt", &salted, 4096)
                .unwrap();
        assert_eq!(
            c.stored_key,
            hex(
                "ff41e86c08f2e525a87285eda3d634d669bae8ab6c2e5b3e09ad0014a691fab9\
                 eb26557062ff978ee011d9b23e6b87437df366cf7cd4c8747df9277d067fd330"
            )
        );
        assert_eq!(
            c.server_key,
            hex(
                "a20870894973d9c760b240b7a95060f1e63512b5f21b81f15ecfe996c163b648\
                 d1af4132eaa2e63b3e89b46bb1592beee5f536c2e1005954521cf37278199629"
            )
        );
    }

    fn upsert(user: &str, mechanism: i8, iterations: i32) -> ScramUpsertion {
        ScramUpsertion {
            user: user.into(),
            mechanism,
            iterations,
            salt: b"salt".to_vec(),
            salted_password: b"salted-password".to_vec(),
        }
    }

    fn delete(user: &str, mechanism: i8) -> ScramDeletion {
        ScramDeletion {
            user: user.into(),
            mechanism,
        }
    }

    fn results(outcomes: Vec<ScramAlterOutcome>) -> Vec<(String, Result<(), ScramAlterError>)> {
        outcomes.into_iter().map(|o| (o.user, o.result)).collect()
    }

    fn ok(user: &str) -> (String, Result<(), ScramAlterError>) {
        (user.to_string(), Ok(()))
    }

    fn refused(user: &str, e: ScramAlterError) -> (String, Result<(), ScramAlterError>) {
        (user.to_string(), Err(e))
    }

    #[test]
    fn upsert_describe_delete() {
        let mut store = ScramCredentials::default();
        assert_eq!(
            store.describe(Some(&["alice"])),
            [UserScramDescription {
                user: "alice".into(),
                result: Err(ScramDescribeError::UnknownUser("alice".into())),
            }]
        );
        assert_eq!(
            results(store.alter(&[], &[upsert("alice", 1, 8192), upsert("bob", 2, 4096)])),
            [ok("alice"), ok("bob")]
        );
        assert_eq!(
            results(store.alter(&[], &[upsert("alice", 2, 16384)])),
            [ok("alice")]
        );
        let alice = store.describe(Some(&["alice"]));
        assert_eq!(
            alice[0].result,
            Ok(vec![
                ScramCredentialInfo {
                    mechanism: ScramMechanism::Sha256,
                    iterations: 8192
                },
                ScramCredentialInfo {
                    mechanism: ScramMechanism::Sha512,
                    iterations: 16384
                },
            ])
        );
        // No names (null or empty): every user, by name.
        for all in [store.describe(None), store.describe(Some(&[]))] {
            let users: Vec<&str> = all.iter().map(|d| d.user.as_str()).collect();
            assert_eq!(users, ["alice", "bob"]);
        }
        assert_eq!(
            results(store.alter(&[delete("alice", 1), delete("bob", 2)], &[])),
            [ok("alice"), ok("bob")]
        );
        assert_eq!(
            results(store.alter(&[delete("bob", 2)], &[])),
            [refused("bob", ScramAlterError::NoSuchCredential)]
        );
        assert_eq!(store.describe(None).len(), 1);
        assert_eq!(
            results(store.alter(&[delete("alice", 2)], &[])),
            [ok("alice")]
        );
        assert!(store.is_empty());
    }

    #[test]
    fn invalid_alterations_are_refused_per_user() {
        let mut store = ScramCredentials::default();
        let mut no_salt = upsert("s", 1, 4096);
        no_salt.salt.clear();
        let mut no_password = upsert("p", 1, 4096);
        no_password.salted_password.clear();
        assert_eq!(
            results(store.alter(
                &[delete("", 1), delete("x", 0)],
                &[
                    upsert("few", 1, 4095),
                    upsert("many", 2, 16385),
                    upsert("m", 3, 4096),
                    no_salt,
                    no_password,
                    upsert("good", 1, 4096),
                ],
            )),
            [
                refused("", ScramAlterError::EmptyUserName),
                refused("x", ScramAlterError::UnknownMechanism),
                refused("few", ScramAlterError::TooFewIterations),
                refused("many", ScramAlterError::TooManyIterations),
                refused("m", ScramAlterError::UnknownMechanism),
                refused("s", ScramAlterError::EmptySalt),
                refused("p", ScramAlterError::EmptySaltedPassword),
                ok("good"),
            ]
        );
        assert_eq!(
            store
                .describe(None)
                .iter()
                .map(|d| d.user.as_str())
                .collect::<Vec<_>>(),
            ["good"]
        );
    }

    #[test]
    fn a_user_altered_twice_is_refused_whole() {
        let mut store = ScramCredentials::default();
        store.alter(&[], &[upsert("a", 1, 4096), upsert("b", 1, 4096)]);
        assert_eq!(
            results(store.alter(
                &[delete("a", 1)],
                &[
                    upsert("a", 2, 4096),
                    upsert("c", 1, 4096),
                    upsert("c", 2, 4096),
                    upsert("d", 1, 1),
                    upsert("d", 1, 4096),
                    upsert("b", 2, 4096),
                ],
            )),
            [
                refused("a", ScramAlterError::AlteredTwice),
                refused("c", ScramAlterError::AlteredTwice),
                // The first refusal of a user stands.
                refused("d", ScramAlterError::TooFewIterations),
                ok("b"),
            ]
        );
        // "a" kept its credential, "c" and "d" got none.
        let users: Vec<(String, usize)> = store
            .describe(None)
            .into_iter()
            .map(|d| (d.user, d.result.map_or(0, |c| c.len())))
            .collect();
        assert_eq!(users, [("a".to_string(), 1), ("b".to_string(), 2)]);
    }

    #[test]
    fn describe_refuses_duplicates_once_per_user() {
        let mut store = ScramCredentials::default();
        store.alter(&[], &[upsert("a", 1, 4096)]);
        let out = store.describe(Some(&["a", "b", "a"]));
        assert_eq!(
            out,
            [
                UserScramDescription {
                    user: "a".into(),
                    result: Err(ScramDescribeError::DuplicateUser("a".into())),
                },
                UserScramDescription {
                    user: "b".into(),
                    result: Err(ScramDescribeError::UnknownUser("b".into())),
                },
            ]
        );
        assert_eq!(
            out[0].result.as_ref().unwrap_err().to_string(),
            "Cannot describe SCRAM credentials for the same user twice in a single request: a"
        );
        assert_eq!(
            out[1].result.as_ref().unwrap_err().to_string(),
            "Attempt to describe a user credential that does not exist: b"
        );
    }

    #[test]
    fn persists_keys_not_passwords() {
        let mut store = ScramCredentials::default();
        store.alter(&[], &[upsert("a", 1, 4096)]);
        let json = serde_json::to_string(&store).unwrap();
        let salted_hex: String = b"salted-password"
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert!(!json.contains(&salted_hex), "{json}");
        assert!(json.starts_with(r#"{"a":{"SCRAM-SHA-256":{"salt":"73616c74","stored_key":""#));
        let back: ScramCredentials = serde_json::from_str(&json).unwrap();
        assert_eq!(back, store);
        assert!(serde_json::from_str::<ScramCredentials>(
            r#"{"a":{"SCRAM-SHA-256":{"salt":"7","stored_key":"","server_key":"","iterations":1}}}"#
        )
        .is_err());
        assert!(!format!("{:?}", store).contains("stored_key"));
    }
}
