//! A broker's life in the cluster, as in KRaft: register, heartbeat, controlled shutdown.
//!
//! At start the broker registers with the active controller, giving its shards (its nodes),
//! its advertised listener, its rack and a new incarnation id; it is fenced until it has
//! applied the metadata log up to its registration. It then heartbeats every
//! `broker.heartbeat.interval.ms` with the offset it has applied; the controller unfences it
//! once it has caught up, and fences it when heartbeats stop for `broker.session.timeout.ms`.
//! The shards start listening once the broker is first unfenced ([`ServingGate`]). On SIGTERM
//! the broker asks for a controlled shutdown before it stops
//! ([`BrokerLifecycle::controlled_shutdown`]): the controller fences it, moves the leadership
//! of its partitions to their other in-sync replicas and takes its nodes out of the ISRs, all
//! in one committed change, and answers once it is committed.

use crate::config::BrokerConfig;
use crate::controller_rpc::{BrokerHeartbeat, ControllerCall, ControllerCallReply};
use crate::metadata::BrokerRegistration;
use crate::quorum_controller::{before, ControllerService};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::{info, warn};

/// How often a broker that is not yet unfenced asks again.
const FENCED_RETRY: Duration = Duration::from_millis(100);
/// How long a controlled shutdown waits for the controller before stopping anyway.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(5);

/// Raised once the broker is first unfenced; the shards open their listeners then.
#[derive(Clone, Default)]
pub struct ServingGate(Arc<AtomicBool>);

impl ServingGate {
    /// Whether the broker may serve clients.
    pub fn is_open(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }

    fn open(&self) {
        self.0.store(true, Ordering::Release);
    }

    /// Waits until the gate opens or `stopped` says to give up; true if it opened.
    pub async fn wait(&self, stopped: impl Fn() -> bool) -> bool {
        while !self.is_open() {
            if stopped() {
                return false;
            }
            glommio::timer::sleep(Duration::from_millis(20)).await;
        }
        true
    }
}

/// This broker's registration and heartbeats.
pub struct BrokerLifecycle {
    service: Rc<ControllerService>,
    registration: BrokerRegistration,
    heartbeat_interval: Duration,
    gate: ServingGate,
}

impl BrokerLifecycle {
    /// The lifecycle of this process's broker, running `shards` shards.
    pub fn new(
        service: Rc<ControllerService>,
        config: &BrokerConfig,
        shards: u32,
        gate: ServingGate,
    ) -> BrokerLifecycle {
        BrokerLifecycle {
            service,
            registration: BrokerRegistration::of_local(config, shards),
            heartbeat_interval: Duration::from_millis(config.broker_heartbeat_interval_ms.max(1)),
            gate,
        }
    }

    /// Registers, then heartbeats until `stopped` says so.
    pub async fn run(self: Rc<Self>, stopped: impl Fn() -> bool) {
        let mut registered = false;
        let mut fenced = true;
        let mut waiting_since = Instant::now();
        while !stopped() {
            if !registered {
                match self
                    .service
                    .call(ControllerCall::RegisterBroker(self.registration.clone()))
                    .await
                {
                    ControllerCallReply::Registered => registered = true,
                    other => self.still_waiting(&mut waiting_since, &other),
                }
            }
            if registered {
                match self.heartbeat(false).await {
                    ControllerCallReply::Heartbeat {
                        registered: false, ..
                    } => registered = false,
                    ControllerCallReply::Heartbeat { fenced: now, .. } => {
                        if fenced && !now {
                            info!(broker = self.registration.id, "broker unfenced: serving");
                            self.gate.open();
                        } else if !fenced && now {
                            warn!(
                                broker = self.registration.id,
                                "broker fenced by the controller"
                            );
                        }
                        fenced = now;
                    }
                    other => self.still_waiting(&mut waiting_since, &other),
                }
            }
            let pause = if registered && !fenced {
                self.heartbeat_interval
            } else {
                FENCED_RETRY.min(self.heartbeat_interval)
            };
            glommio::timer::sleep(pause).await;
        }
    }

    /// Logs, at most every 10 s, that the broker still waits for the quorum.
    fn still_waiting(&self, since: &mut Instant, reply: &ControllerCallReply) {
        if since.elapsed() >= Duration::from_secs(10) {
            *since = Instant::now();
            warn!(
                broker = self.registration.id,
                "still waiting for the controller quorum to register or unfence this broker ({reply:?}); check that a majority of controller.quorum.voters is running"
            );
        }
    }

    async fn heartbeat(&self, shutting_down: bool) -> ControllerCallReply {
        self.service
            .call(ControllerCall::BrokerHeartbeat(BrokerHeartbeat {
                id: self.registration.id,
                incarnation_id: self.registration.incarnation_id,
                applied_offset: self.service.applied_offset(),
                shutting_down,
            }))
            .await
    }

    /// Tells the controller this broker is stopping, so that it is fenced at once rather than
    /// after `broker.session.timeout.ms`, and its partitions' leadership moves to their other
    /// in-sync replicas before it stops; returns once that is committed. Gives up after a few
    /// seconds (the quorum may be gone).
    pub async fn controlled_shutdown(&self) {
        let deadline = Instant::now() + SHUTDOWN_WAIT;
        match before(deadline, self.heartbeat(true)).await {
            Some(ControllerCallReply::Heartbeat { fenced: true, .. }) => {
                info!(
                    broker = self.registration.id,
                    "controlled shutdown: fenced by the controller"
                )
            }
            other => warn!(
                broker = self.registration.id,
                "controlled shutdown not confirmed by the controller ({other:?}); stopping anyway"
            ),
        }
    }
}
