//! The Kaniko build: rendering the Job (pure) and running it (copy the instance ConfigMap into the
//! builder namespace, create the Job, report its phase, follow its log, judge the outcome).
