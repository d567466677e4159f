/**
 * Balancing: the streaming balancer (one pass over annotated rows, exact class counts,
 * quotas per stratum), the allocation of a class's quota across strata (equal, proportional
 * or capped: the source document's "Strategy 1", equal representation, and its variants),
 * and the bounded candidate sets that keep the k smallest keys of a stream.
 */
export * from './allocation';
export * from './balancer';
export * from './candidates';
export * from './emit';
