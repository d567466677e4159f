/**
 * The build report: the part of a manifest it reads, a profile of labelled rows, the
 * page model (facts and charts) and the Vega-Lite chart specs, all pure.
 */
export * from './manifest';
export * from './page';
export * from './profile';
export * from './specs';
