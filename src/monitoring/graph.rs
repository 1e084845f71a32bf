//! The dataflow graph of a pipeline, as timely's logging describes it: every operator (with
//! its address of nested scopes) and every channel between two operators of a scope.
//!
//! The graph is read once, from a throwaway single-threaded build of the pipeline with timely's
//! event logger attached ([`crate::driver`] makes it): logging the running dataflow instead
//! would cost every operator's every activation.

use serde::Serialize;
use std::cell::RefCell;
use std::rc::Rc;
use timely::logging::{TimelyEvent, TimelyEventBuilder};
use timely::worker::Worker;

/// An operator.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Node {
    /// Its address, dotted (`0.4.2`: operator 2 of the scope that is operator 4 of dataflow 0).
    pub id: String,
    /// Its name.
    pub name: String,
    /// The address of the scope it is in.
    pub scope: String,
}

/// A channel from one operator's output to another's input, in one scope.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Edge {
    /// The sending operator's address.
    pub from: String,
    /// The receiving operator's address.
    pub to: String,
}

/// Operators and channels.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Graph {
    /// Every operator but the dataflows themselves.
    pub nodes: Vec<Node>,
    /// Every channel between two operators (not those to or from a scope's own boundary).
    pub edges: Vec<Edge>,
}

fn dotted(addr: &[usize]) -> String {
    addr.iter()
        .map(usize::to_string)
        .collect::<Vec<_>>()
        .join(".")
}

impl Graph {
    /// The graph of the dataflows that `build` constructs on `worker` (with their inputs
    /// closed: they are run to their end here), read from timely's logging.
    pub fn capture(worker: &mut Worker, build: impl FnOnce(&mut Worker)) -> Graph {
        let events: Rc<RefCell<Vec<TimelyEvent>>> = Rc::default();
        let sink = Rc::clone(&events);
        if let Some(mut register) = worker.log_register() {
            register.insert::<TimelyEventBuilder, _>("timely", move |_time, data| {
                if let Some(data) = data {
                    let mut kept = sink.borrow_mut();
                    kept.extend(data.drain(..).filter_map(|(_, e)| match e {
                        TimelyEvent::Operates(_) | TimelyEvent::Channels(_) => Some(e),
                        _ => None,
                    }));
                }
            });
        }
        build(worker);
        // Loggers flush what they buffered when dropped: run the dataflows (built with their
        // inputs closed) to their end, so that every copy of the logger is gone.
        for _ in 0..10_000 {
            if !worker.has_dataflows() {
                break;
            }
            worker.step();
        }
        // A dataflow that did not finish (an operator holding a capability past its closed
        // input) must not keep the worker busy: the graph is all that is wanted of it.
        for dataflow in worker.installed_dataflows() {
            worker.drop_dataflow(dataflow);
        }
        if let Some(mut register) = worker.log_register() {
            drop(register.remove("timely"));
        }
        let events = std::mem::take(&mut *events.borrow_mut());
        Graph::from_events(&events)
    }

    /// The graph that logged `events` describe.
    pub fn from_events(events: &[TimelyEvent]) -> Graph {
        let mut graph = Graph::default();
        for event in events {
            match event {
                TimelyEvent::Operates(op) if op.addr.len() > 1 => graph.nodes.push(Node {
                    id: dotted(&op.addr),
                    name: op.name.clone(),
                    scope: dotted(&op.addr[..op.addr.len() - 1]),
                }),
                // Index 0 is the scope's own boundary (its inputs and outputs).
                TimelyEvent::Channels(ch) if ch.source.0 > 0 && ch.target.0 > 0 => {
                    let at = |index: usize| {
                        let mut addr = ch.scope_addr.clone();
                        addr.push(index);
                        dotted(&addr)
                    };
                    graph.edges.push(Edge {
                        from: at(ch.source.0),
                        to: at(ch.target.0),
                    });
                }
                _ => {}
            }
        }
        graph
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use timely::dataflow::operators::vec::{Filter, Map};
    use timely::dataflow::operators::{Input, Inspect};

    #[test]
    fn a_chain_of_operators_is_a_chain_of_nodes() {
        let graph = timely::execute::execute_directly(|worker| {
            Graph::capture(worker, |worker| {
                worker.dataflow::<u64, _, _>(|scope| {
                    let (_input, stream) = scope.new_input::<Vec<u64>>();
                    stream.map(|x| x + 1).filter(|x| x % 2 == 0).inspect(|_| {});
                });
            })
        });
        let names: Vec<&str> = graph.nodes.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(
            names,
            ["Input", "FlatMap", "Filter", "Inspect"],
            "{graph:?}"
        );
        assert!(graph.nodes.iter().all(|n| n.scope == "0"));
        let id = |name: &str| {
            graph
                .nodes
                .iter()
                .find(|n| n.name == name)
                .map(|n| n.id.clone())
                .unwrap()
        };
        for (from, to) in [
            ("Input", "FlatMap"),
            ("FlatMap", "Filter"),
            ("Filter", "Inspect"),
        ] {
            let edge = Edge {
                from: id(from),
                to: id(to),
            };
            assert!(graph.edges.contains(&edge), "{from} → {to} in {graph:?}");
        }
        assert_eq!(graph.edges.len(), 3);
    }
}
