//! KRaft roles and the controller quorum, with Kafka's names: `process.roles`,
//! `controller.quorum.voters` and the rules that tie them to `node.id`, `listeners` and
//! `controller.listener.names`.
//!
//! An empty `controller.quorum.voters` (the default) means a one-node quorum of this process
//! alone, so `sluice start` with no configuration stays a working single-node cluster. Once
//! voters are listed, the rules are Kafka's: a controller is one of the voters and listens on
//! its voter port through a controller listener; a broker-only process is not a voter and has
//! no controller listener of its own.

use super::broker::{parse_host_port, Listener, MAX_BROKER_ID};
use super::parse_list;
use std::collections::BTreeSet;
use std::fmt;

/// The roles a process plays (`process.roles`): `broker`, `controller` or both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessRoles {
    /// Serves clients: the shards hold partitions and answer the Kafka protocol.
    pub broker: bool,
    /// Votes in the controller quorum that keeps the cluster metadata log.
    pub controller: bool,
}

impl ProcessRoles {
    /// Parses `process.roles`: a non-empty list of `broker` and `controller`, each at most once.
    pub fn parse(value: &str) -> Result<ProcessRoles, String> {
        let mut roles = ProcessRoles {
            broker: false,
            controller: false,
        };
        let entries = parse_list(value);
        if entries.is_empty() {
            return Err("expected broker, controller or broker,controller".to_string());
        }
        for role in &entries {
            let seen = match role.as_str() {
                "broker" => std::mem::replace(&mut roles.broker, true),
                "controller" => std::mem::replace(&mut roles.controller, true),
                other => {
                    return Err(format!(
                        "unknown role '{other}'; expected broker, controller or broker,controller"
                    ))
                }
            };
            if seen {
                return Err(format!("the role '{role}' is listed twice"));
            }
        }
        Ok(roles)
    }

    /// True for a process that is a broker and not a controller.
    pub fn is_broker_only(&self) -> bool {
        self.broker && !self.controller
    }
}

impl fmt::Display for ProcessRoles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = [(self.broker, "broker"), (self.controller, "controller")]
            .into_iter()
            .filter_map(|(on, name)| on.then_some(name))
            .collect();
        f.write_str(&names.join(","))
    }
}

/// One entry of `controller.quorum.voters`: `id@host:port`, the address of a controller's
/// controller listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumVoter {
    /// The voter's `node.id`.
    pub id: i32,
    /// Host name or IP literal (without brackets).
    pub host: String,
    /// Port of the voter's controller listener.
    pub port: u16,
}

impl fmt::Display for QuorumVoter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "{}@[{}]:{}", self.id, self.host, self.port)
        } else {
            write!(f, "{}@{}:{}", self.id, self.host, self.port)
        }
    }
}

/// Parses `controller.quorum.voters` (`id@host:port,...`, IPv6 hosts in brackets). Duplicate
/// ids are left to [`check_quorum`], which names them.
pub fn parse_voters(value: &str) -> Result<Vec<QuorumVoter>, String> {
    parse_list(value)
        .iter()
        .map(|entry| {
            let parsed = entry.split_once('@').and_then(|(id, addr)| {
                let id = id.trim().parse::<i32>().ok()?;
                let (host, port) = parse_host_port(addr.trim())?;
                ((0..=MAX_BROKER_ID).contains(&id) && !host.is_empty())
                    .then_some(QuorumVoter { id, host, port })
            });
            parsed.ok_or_else(|| {
                format!(
                    "cannot parse '{entry}'; expected a comma-separated list of id@host:port with 0 <= id <= {MAX_BROKER_ID}"
                )
            })
        })
        .collect()
}

/// The key check of `controller.quorum.voters`.
pub(super) fn check_voters(value: &str) -> Result<(), String> {
    parse_voters(value).map(|_| ())
}

/// The key check of `process.roles`.
pub(super) fn check_process_roles(value: &str) -> Result<(), String> {
    ProcessRoles::parse(value).map(|_| ())
}

/// The controller listener: the listener of `listeners` named first in
/// `controller.listener.names` (Kafka's controllers and brokers use the first name).
pub(super) fn find_controller_listener(
    listeners: &[Listener],
    controller_listener_names: &[String],
) -> Option<Listener> {
    controller_listener_names
        .iter()
        .find_map(|name| listeners.iter().find(|l| &l.name == name))
        .cloned()
}

/// The settings the quorum rules look at, already parsed.
pub(super) struct QuorumSettings<'a> {
    /// `node.id` / `broker.id`.
    pub node_id: i32,
    /// `process.roles`.
    pub roles: ProcessRoles,
    /// `controller.quorum.voters`.
    pub voters: &'a [QuorumVoter],
    /// `listeners`.
    pub listeners: &'a [Listener],
    /// `controller.listener.names`, upper-cased.
    pub controller_listener_names: &'a [String],
    /// See [`find_controller_listener`].
    pub controller_listener: Option<&'a Listener>,
}

/// Kafka's consistency rules between roles, node id, voters and listeners. Returns one message
/// per broken rule, each naming the key to fix; `at(key)` says where the key was set.
pub(super) fn check_quorum(s: &QuorumSettings<'_>, at: &dyn Fn(&str) -> String) -> Vec<String> {
    const VOTERS: &str = "controller.quorum.voters";
    const NAMES: &str = "controller.listener.names";
    let mut problems = Vec::new();
    let mut ids = BTreeSet::new();
    for v in s.voters {
        if !ids.insert(v.id) {
            problems.push(format!(
                "'{VOTERS}'{} lists voter id {} twice; every voter needs its own node.id",
                at(VOTERS),
                v.id
            ));
        }
    }
    let voter_ids = || {
        s.voters
            .iter()
            .map(|v| v.id.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let listener_names = || {
        s.listeners
            .iter()
            .map(|l| l.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let own_voter = s.voters.iter().find(|v| v.id == s.node_id);

    if s.roles.controller && !s.voters.is_empty() {
        match own_voter {
            None => problems.push(format!(
                "'{VOTERS}'{} must include this node's id {} because 'process.roles' contains 'controller' (voter ids: {})",
                at(VOTERS),
                s.node_id,
                voter_ids()
            )),
            Some(voter) => match s.controller_listener {
                None => problems.push(format!(
                    "'{NAMES}'{} must name a listener of 'listeners'{} ({}) when 'process.roles' contains 'controller' and '{VOTERS}' is set; add e.g. CONTROLLER://host:{} to 'listeners' and CONTROLLER to '{NAMES}'",
                    at(NAMES),
                    at("listeners"),
                    listener_names(),
                    voter.port
                )),
                Some(listener) if listener.port != voter.port => problems.push(format!(
                    "'{VOTERS}'{} gives this node ({voter}) port {}, but its controller listener {listener} listens on port {}; they must match",
                    at(VOTERS),
                    voter.port,
                    listener.port
                )),
                Some(_) => {}
            },
        }
    }

    if s.roles.is_broker_only() {
        if s.voters.is_empty() {
            problems.push(format!(
                "'{VOTERS}' must list the controller quorum (id@host:port,...) when 'process.roles' is 'broker': a broker-only process joins the quorum of other processes"
            ));
        }
        if own_voter.is_some() {
            problems.push(format!(
                "'{VOTERS}'{} must not include this node's id {} when 'process.roles' contains just the 'broker' role (voter ids: {})",
                at(VOTERS),
                s.node_id,
                voter_ids()
            ));
        }
        if s.controller_listener_names.is_empty() {
            problems.push(format!(
                "'{NAMES}' must contain at least one value when 'process.roles' is 'broker'; it names the listener used to reach the controllers"
            ));
        }
        if let Some(listener) = s.controller_listener {
            problems.push(format!(
                "'{NAMES}'{} must not name a listener of 'listeners'{} ({listener}) when 'process.roles' is 'broker'; only controllers listen on a controller listener",
                at(NAMES),
                at("listeners")
            ));
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listener(name: &str, port: u16) -> Listener {
        Listener {
            name: name.to_string(),
            host: "127.0.0.1".to_string(),
            port,
        }
    }

    #[test]
    fn roles_parse_and_print() {
        let both = ProcessRoles::parse("broker,controller").unwrap();
        assert!(both.broker && both.controller && !both.is_broker_only());
        assert_eq!(both.to_string(), "broker,controller");
        assert_eq!(ProcessRoles::parse(" controller , broker ").unwrap(), both);
        let broker = ProcessRoles::parse("broker").unwrap();
        assert!(broker.is_broker_only());
        assert_eq!(broker.to_string(), "broker");
        assert_eq!(
            ProcessRoles::parse("controller").unwrap().to_string(),
            "controller"
        );
        assert!(ProcessRoles::parse("").is_err());
        assert!(ProcessRoles::parse("broker,broker")
            .unwrap_err()
            .contains("twice"));
        assert!(ProcessRoles::parse("leader")
            .unwrap_err()
            .contains("'leader'"));
    }

    #[test]
    fn voters_parse_and_print() {
        let voters = parse_voters("1@a.example:19199, 2@[::1]:19299,3@10.0.0.3:19399").unwrap();
        assert_eq!(
            voters,
            vec![
                QuorumVoter {
                    id: 1,
                    host: "a.example".into(),
                    port: 19199
                },
                QuorumVoter {
                    id: 2,
                    host: "::1".into(),
                    port: 19299
                },
                QuorumVoter {
                    id: 3,
                    host: "10.0.0.3".into(),
                    port: 19399
                },
            ]
        );
        assert_eq!(voters[1].to_string(), "2@[::1]:19299");
        assert_eq!(voters[0].to_string(), "1@a.example:19199");
        assert!(parse_voters("").unwrap().is_empty());
        for bad in [
            "1@host",
            "x@h:1",
            "-1@h:1",
            "1@:9093",
            "2147483@h:1",
            "1@h:70000",
            "h:1",
        ] {
            assert!(parse_voters(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn controller_listener_follows_the_names_order() {
        let listeners = [
            listener("PLAINTEXT", 9092),
            listener("A", 9100),
            listener("B", 9101),
        ];
        let names = ["B".to_string(), "A".to_string()];
        assert_eq!(
            find_controller_listener(&listeners, &names).unwrap().name,
            "B"
        );
        assert_eq!(find_controller_listener(&listeners, &[]), None);
        assert_eq!(
            find_controller_listener(&listeners, &["C".to_string()]),
            None
        );
    }

    fn check(
        roles: &str,
        node_id: i32,
        voters: &str,
        listeners: &[Listener],
        names: &[&str],
    ) -> Vec<String> {
        let voters = parse_voters(voters).unwrap();
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let controller = find_controller_listener(listeners, &names);
        check_quorum(
            &QuorumSettings {
                node_id,
                roles: ProcessRoles::parse(roles).unwrap(),
                voters: &voters,
                listeners,
                controller_listener_names: &names,
                controller_listener: controller.as_ref(),
            },
            &|_| String::new(),
        )
    }

    #[test]
    fn quorum_rules() {
        let plain = [listener("PLAINTEXT", 9092)];
        let both = [listener("PLAINTEXT", 9092), listener("CONTROLLER", 9099)];
        let voters = "1@h:9099,2@h:9199,3@h:9299";
        // The default: a one-node quorum of this process, no controller listener needed.
        assert!(check("broker,controller", 1, "", &plain, &[]).is_empty());
        assert!(check("broker,controller", 1, voters, &both, &["CONTROLLER"]).is_empty());
        assert!(check("controller", 2, "1@h:9099,2@h:9099", &both, &["CONTROLLER"]).is_empty());
        assert!(check("broker", 4, voters, &plain, &["CONTROLLER"]).is_empty());

        let p = check("broker,controller", 4, voters, &both, &["CONTROLLER"]);
        assert!(
            p[0].contains("'controller.quorum.voters'") && p[0].contains("id 4"),
            "{p:?}"
        );
        let p = check(
            "broker,controller",
            1,
            "1@h:9099,1@h:9199",
            &both,
            &["CONTROLLER"],
        );
        assert!(
            p[0].contains("'controller.quorum.voters'") && p[0].contains("twice"),
            "{p:?}"
        );
        let p = check("broker,controller", 1, voters, &plain, &[]);
        assert!(
            p[0].starts_with("'controller.listener.names'") && p[0].contains("'listeners'"),
            "{p:?}"
        );
        let p = check("broker,controller", 1, voters, &plain, &["CONTROLLER"]);
        assert!(p[0].starts_with("'controller.listener.names'"), "{p:?}");
        let p = check("broker,controller", 2, voters, &both, &["CONTROLLER"]);
        assert!(
            p[0].starts_with("'controller.quorum.voters'")
                && p[0].contains("9199")
                && p[0].contains("9099"),
            "{p:?}"
        );

        let p = check("broker", 4, "", &plain, &["CONTROLLER"]);
        assert!(
            p[0].starts_with("'controller.quorum.voters' must list"),
            "{p:?}"
        );
        let p = check("broker", 1, voters, &plain, &["CONTROLLER"]);
        assert!(p[0].contains("must not include this node's id 1"), "{p:?}");
        let p = check("broker", 4, voters, &plain, &[]);
        assert!(
            p[0].starts_with("'controller.listener.names' must contain"),
            "{p:?}"
        );
        let p = check("broker", 4, voters, &both, &["CONTROLLER"]);
        assert!(
            p[0].starts_with("'controller.listener.names'") && p[0].contains("must not name"),
            "{p:?}"
        );
    }
}
