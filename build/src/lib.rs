//! How a build happens, in one place.
//!
//! A tenant never touches the builder namespace, the registry or AWS: it asks for the image of
//! one of its instances with a `BuildRequest` in its own namespace
//! ([`jockey_core::build_request`]). The broker ([`broker`]), running in the cluster under its
//! own identity, checks that the namespace owns the project and that the instance is what its
//! name says, makes sure the image repository refuses overwrites ([`ecr`]), mints short-lived
//! credentials that can push only that project's repositories ([`credentials`]), runs Kaniko
//! ([`kaniko`]) in the builder namespace, judges the Job ([`job`]) and writes the outcome and
//! the log's tail back on the request.

pub mod aws;
pub mod broker;
pub mod credentials;
pub mod ecr;
pub mod job;
pub mod kaniko;
#[cfg(test)]
mod moto;

/// Whether a kube error is the API server's 404.
pub fn is_not_found(err: &kube::Error) -> bool {
    matches!(err, kube::Error::Api(status) if status.code == 404)
}
