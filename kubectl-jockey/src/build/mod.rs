//! What the plugin still does about builds. A tenant's side is [`request`]: ask jockey's build
//! broker (the `jockey-build` crate, run by `jockey-webhook broker`) for an image and follow its
//! answer; [`image_record`] remembers on the instance ConfigMap which image it got. The
//! operator's side is [`setup_builder`] (the builder namespace) and [`logs_builder`] (the
//! build logs; a tenant's own through its requests).

pub mod image_record;
pub mod logs_builder;
pub mod request;
pub mod setup_builder;
