//! The rebalance state machine driven by hand: joins, syncs, heartbeats, leaves and timers.

use super::*;
use kafka_protocol::ResponseError as E;

const CFG: GroupConfig = GroupConfig {
    initial_rebalance_delay_ms: 3000,
    min_session_timeout_ms: 6000,
    max_session_timeout_ms: 1_800_000,
    max_size: 3,
};

fn join_req(member_id: &str, instance: Option<&str>, protocols: &[&str]) -> JoinRequest {
    JoinRequest {
        member_id: member_id.into(),
        instance_id: instance.map(str::to_string),
        client_id: "client".into(),
        client_host: "/127.0.0.1".into(),
        session_timeout_ms: 10_000,
        rebalance_timeout_ms: 60_000,
        protocol_type: "consumer".into(),
        protocols: protocols
            .iter()
            .map(|p| (p.to_string(), Bytes::from(format!("meta-{p}"))))
            .collect(),
        require_known_member_id: true,
    }
}

fn now<T>(a: Answer<T>) -> T {
    match a {
        Answer::Now(t) => t,
        Answer::Later(_) => panic!("expected an immediate answer"),
    }
}

fn later<T: std::fmt::Debug>(a: Answer<T>) -> oneshot::Receiver<T> {
    match a {
        Answer::Later(rx) => rx,
        Answer::Now(t) => panic!("expected a parked answer, got {t:?}"),
    }
}

fn ready<T>(rx: &mut oneshot::Receiver<T>) -> Option<T> {
    rx.try_recv().ok().flatten()
}

/// Two-step join of a new dynamic member: MEMBER_ID_REQUIRED, then a parked join.
fn join_new(g: &mut Group, t: i64) -> (String, oneshot::Receiver<JoinOutcome>) {
    let first = now(g.join(join_req("", None, &["range"]), &CFG, t));
    assert_eq!(first.error, E::MemberIdRequired.code());
    let id = first.member_id.clone();
    assert!(id.starts_with("client-"));
    let rx = later(g.join(join_req(&id, None, &["range"]), &CFG, t));
    (id, rx)
}

/// Brings a fresh group to Stable with `n` members; returns their ids (leader first).
fn stable_group(n: usize) -> (Group, Vec<String>) {
    let mut g = Group::new("g", 0, 0);
    let mut joins: Vec<_> = (0..n).map(|_| join_new(&mut g, 0)).collect();
    assert_eq!(g.state, GroupState::PreparingRebalance);
    g.tick(&CFG, 2999);
    assert!(
        ready(&mut joins[0].1).is_none(),
        "the initial delay runs its course"
    );
    g.tick(&CFG, 3000);
    g.tick(&CFG, 6000);
    assert_eq!(g.state, GroupState::CompletingRebalance);
    let outcomes: Vec<JoinOutcome> = joins
        .iter_mut()
        .map(|(_, rx)| ready(rx).expect("joined"))
        .collect();
    let leader = outcomes[0].leader.clone();
    assert!(outcomes
        .iter()
        .all(|o| o.generation == 1 && o.leader == leader));
    assert_eq!(
        outcomes.iter().filter(|o| !o.members.is_empty()).count(),
        1,
        "only the leader gets the member list"
    );
    let mut ids: Vec<String> = joins.into_iter().map(|(id, _)| id).collect();
    ids.sort_by_key(|id| *id != leader);
    let mut rxs = Vec::new();
    for id in ids.iter().skip(1) {
        match g.sync(sync_req(id, 1, vec![]), 6000) {
            SyncStep::Answer(Answer::Later(rx)) => rxs.push(rx),
            _ => panic!("a follower waits for the leader"),
        }
    }
    let assignments = ids
        .iter()
        .map(|id| (id.clone(), Bytes::from(format!("assign-{id}"))))
        .collect();
    let SyncStep::Assigned(mut rx) = g.sync(sync_req(&ids[0], 1, assignments), 6000) else {
        panic!("the leader's sync assigns")
    };
    assert_eq!(g.state, GroupState::Stable);
    g.release_sync();
    assert_eq!(
        ready(&mut rx).unwrap().assignment,
        format!("assign-{}", ids[0])
    );
    for (rx, id) in rxs.iter_mut().zip(ids.iter().skip(1)) {
        assert_eq!(ready(rx).unwrap().assignment, format!("assign-{id}"));
    }
    (g, ids)
}

fn sync_req(id: &str, generation: i32, assignments: Vec<(String, Bytes)>) -> SyncRequest {
    SyncRequest {
        member_id: id.into(),
        instance_id: None,
        generation,
        protocol_type: Some("consumer".into()),
        protocol: Some("range".into()),
        assignments,
    }
}

#[test]
fn members_join_sync_and_settle() {
    let (mut g, ids) = stable_group(3);
    assert_eq!(g.heartbeat(&ids[1], None, 1, 7000), 0);
    assert_eq!(
        g.heartbeat(&ids[1], None, 0, 7000),
        E::IllegalGeneration.code()
    );
    assert_eq!(
        g.heartbeat("nobody", None, 1, 7000),
        E::UnknownMemberId.code()
    );
    let SyncStep::Answer(Answer::Now(again)) = g.sync(sync_req(&ids[2], 1, vec![]), 7000) else {
        panic!("a stable group answers sync at once")
    };
    assert_eq!(again.assignment, format!("assign-{}", ids[2]));
}

#[test]
fn group_max_size_is_enforced() {
    let (mut g, _) = stable_group(3);
    let full = now(g.join(join_req("", None, &["range"]), &CFG, 7000));
    assert_eq!(full.error, E::GroupMaxSizeReached.code());
}

#[test]
fn a_leaving_member_triggers_a_rebalance_without_it() {
    let (mut g, ids) = stable_group(3);
    assert_eq!(g.leave(&ids[2], None, &CFG, 7000), 0);
    assert_eq!(g.state, GroupState::PreparingRebalance);
    assert_eq!(
        g.heartbeat(&ids[0], None, 1, 7001),
        E::RebalanceInProgress.code()
    );
    let mut a = later(g.join(join_req(&ids[0], None, &["range"]), &CFG, 7002));
    assert!(ready(&mut a).is_none());
    let mut b = later(g.join(join_req(&ids[1], None, &["range"]), &CFG, 7003));
    let (a, b) = (ready(&mut a).unwrap(), ready(&mut b).unwrap());
    assert_eq!(
        (a.generation, b.generation),
        (2, 2),
        "completes once all rejoined"
    );
    assert_eq!(a.members.len() + b.members.len(), 2);
    assert_eq!(
        g.leave(&ids[2], None, &CFG, 7004),
        E::UnknownMemberId.code()
    );
}

#[test]
fn silent_members_expire_and_the_rest_rebalance() {
    let (mut g, ids) = stable_group(2);
    g.heartbeat(&ids[0], None, 1, 15_000);
    g.tick(&CFG, 16_001);
    assert!(!g.members.contains_key(&ids[1]), "no heartbeat for 10 s");
    assert_eq!(g.state, GroupState::PreparingRebalance);
    let mut rx = later(g.join(join_req(&ids[0], None, &["range"]), &CFG, 16_002));
    assert_eq!(ready(&mut rx).unwrap().generation, 2);
    g.tick(&CFG, 40_000);
    assert!(g.members.is_empty(), "the last member expired too");
    assert_eq!(g.state, GroupState::Empty, "nobody left to wait for");
    assert_eq!(g.generation, 3);
    assert!(g.needs_store);
}

#[test]
fn rebalance_timeout_drops_members_that_do_not_rejoin() {
    let (mut g, ids) = stable_group(2);
    let mut rx = later(g.join(
        join_req(&ids[0], None, &["range", "roundrobin"]),
        &CFG,
        7000,
    ));
    assert_eq!(g.state, GroupState::PreparingRebalance);
    g.heartbeat(&ids[1], None, 1, 60_000);
    g.tick(&CFG, 67_000);
    let outcome = ready(&mut rx).unwrap();
    assert_eq!(outcome.members.len(), 1);
    assert!(!g.members.contains_key(&ids[1]));
}

#[test]
fn inconsistent_protocols_are_refused() {
    let (mut g, _) = stable_group(1);
    let mut req = join_req("", None, &["sticky"]);
    assert_eq!(
        now(g.join(req.clone(), &CFG, 7000)).error,
        E::InconsistentGroupProtocol.code()
    );
    req.protocol_type = "connect".into();
    req.protocols = vec![("range".into(), Bytes::new())];
    assert_eq!(
        now(g.join(req, &CFG, 7000)).error,
        E::InconsistentGroupProtocol.code()
    );
}

#[test]
fn a_returning_static_member_gets_its_assignment_without_a_rebalance() {
    let mut g = Group::new("g", 0, 0);
    let mut a = later(g.join(join_req("", Some("i-a"), &["range"]), &CFG, 0));
    let mut b = later(g.join(join_req("", Some("i-b"), &["range"]), &CFG, 0));
    g.tick(&CFG, 3000);
    g.tick(&CFG, 6000);
    let (a, b) = (ready(&mut a).unwrap(), ready(&mut b).unwrap());
    assert!(a.member_id.starts_with("i-a-") && b.member_id.starts_with("i-b-"));
    let leader = a.leader.clone();
    let follower = if leader == a.member_id { &b } else { &a };
    let follower_instance = if leader == a.member_id { "i-b" } else { "i-a" };
    let assignments = vec![
        (a.member_id.clone(), Bytes::from_static(b"A")),
        (b.member_id.clone(), Bytes::from_static(b"B")),
    ];
    let SyncStep::Assigned(_) = g.sync(sync_req(&leader, 1, assignments), 3000) else {
        panic!("leader assigns")
    };
    g.release_sync();
    let old_assignment = g.members[&follower.member_id].assignment.clone();

    let back = now(g.join(
        join_req("", Some(follower_instance), &["range"]),
        &CFG,
        4000,
    ));
    assert_eq!(back.error, 0);
    assert_eq!(back.generation, 1, "no new generation");
    assert_ne!(back.member_id, follower.member_id, "a new member id");
    assert_eq!(g.state, GroupState::Stable);
    assert!(g.needs_store);
    let SyncStep::Answer(Answer::Now(sync)) = g.sync(
        SyncRequest {
            instance_id: Some(follower_instance.into()),
            ..sync_req(&back.member_id, 1, vec![])
        },
        4000,
    ) else {
        panic!("stable group answers sync at once")
    };
    assert_eq!(sync.assignment, old_assignment);
    assert_eq!(
        g.heartbeat(&follower.member_id, Some(follower_instance), 1, 4000),
        E::FencedInstanceId.code(),
        "the old member id is fenced"
    );
    assert_eq!(
        g.leave(&follower.member_id, Some(follower_instance), &CFG, 4000),
        E::FencedInstanceId.code()
    );
    assert_eq!(g.leave("", Some(follower_instance), &CFG, 4000), 0);
    assert_eq!(g.state, GroupState::PreparingRebalance);
}

#[test]
fn initial_delay_extends_while_members_keep_arriving() {
    let mut g = Group::new("g", 0, 0);
    let (_, mut first) = join_new(&mut g, 0);
    g.tick(&CFG, 2000);
    let (_, _second) = join_new(&mut g, 2000);
    g.tick(&CFG, 3000);
    assert!(
        ready(&mut first).is_none(),
        "a member arrived during the delay"
    );
    g.tick(&CFG, 5999);
    assert!(ready(&mut first).is_none());
    g.tick(&CFG, 6000);
    assert_eq!(ready(&mut first).unwrap().generation, 1);
}

#[test]
fn a_rejoin_during_completing_rebalance_is_answered_at_once() {
    let mut g = Group::new("g", 0, 0);
    let (id, _) = join_new(&mut g, 0);
    g.tick(&CFG, 3000);
    assert_eq!(g.state, GroupState::CompletingRebalance);
    let again = now(g.join(join_req(&id, None, &["range"]), &CFG, 3001));
    assert_eq!((again.generation, again.members.len()), (1, 1));
}
