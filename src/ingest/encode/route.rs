//! A line's route: its endpoint templated (`analytics::routes`), then admitted by the
//! per-service cap. The cap is one for the whole load, seeded with the routes the
//! database already has; each encoder remembers the routes it saw admitted, so the
//! common case takes no lock.

use std::borrow::Cow;
use std::sync::{Arc, Mutex};

use rustc_hash::{FxHashMap, FxHashSet};

use crate::analytics::routes::{OTHER_ROUTE, RouteCap, RouteRule, RouteTemplater};

/// How lines get their routes: the rules, and the cap shared by every encoder of a load.
#[derive(Debug, Clone, Default)]
pub struct Routes {
    templater: RouteTemplater,
    cap: Arc<Mutex<RouteCap>>,
}

impl Routes {
    /// The user's rules before the defaults, and at most `limit` routes per service.
    pub fn new(rules: Vec<RouteRule>, limit: usize) -> Routes {
        Routes {
            templater: RouteTemplater::new(rules),
            cap: Arc::new(Mutex::new(RouteCap::new(limit))),
        }
    }

    /// A route the database already has for this service: always admitted.
    pub fn seed(&self, service: &str, route: &str) {
        self.cap.lock().expect("not poisoned").seed(service, route);
    }
}

/// One encoder's view of the routes: the shared rules and cap, and the routes it has
/// seen admitted, by service.
#[derive(Debug)]
pub(super) struct RouteFinder {
    routes: Routes,
    admitted: FxHashMap<Box<str>, FxHashSet<Box<str>>>,
}

impl RouteFinder {
    pub fn new(routes: Routes) -> RouteFinder {
        RouteFinder {
            routes,
            admitted: FxHashMap::default(),
        }
    }

    /// The route of an endpoint of this service.
    pub fn route<'e>(&mut self, service: &str, endpoint: &'e str) -> Cow<'e, str> {
        let route = self.routes.templater.template(endpoint);
        if self
            .admitted
            .get(service)
            .is_some_and(|routes| routes.contains(&*route))
        {
            return route;
        }
        let admitted = self
            .routes
            .cap
            .lock()
            .expect("not poisoned")
            .admit(service, &route)
            == &*route;
        if !admitted {
            return Cow::Borrowed(OTHER_ROUTE);
        }
        self.admitted
            .entry(service.into())
            .or_default()
            .insert((&*route).into());
        route
    }
}
