//! The annotation, the builder image and the instance volume move together, whichever of them an
//! update changed; every way a user changes one is a case here.

use super::super::*;
use crate::ContentHash;
use crate::names::LABEL_CONTENT_HASH;
use serde_json::{Value, json};

const P: &str = "0b1c2d3e-aaaa-bbbb-cccc-0123456789ab";
const H1: &str = "1111111111111111";
const H2: &str = "2222222222222222";
const H3: &str = "3333333333333333";
const REG: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com";

fn cfg() -> Config {
    Config::from_lookup(|k| (k == "IMAGE_REGISTRY").then(|| REG.to_string()))
}

fn project() -> ProjectId {
    ProjectId::parse(P).unwrap()
}

fn image(h: &str) -> String {
    format!("{REG}/hosting/{P}:{h}")
}

fn content(h: &str) -> ContentHash {
    ContentHash::parse_full(&format!("{h}{}", "0".repeat(48))).unwrap()
}

/// What the API server stores for instance `h` (rendered and defaulted, as deploy and the webhook
/// make it).
fn stored(h: &str) -> Deployment {
    default_deployment(&render_deployment(&project(), &content(h)), &cfg()).unwrap()
}

fn json_of(d: &Deployment) -> Value {
    serde_json::to_value(d).unwrap()
}

fn from_json(v: Value) -> Deployment {
    serde_json::from_value(v).unwrap()
}

/// `f` applied to the JSON of `d`, as a user's tool edits the object.
fn edit(d: &Deployment, f: impl FnOnce(&mut Value)) -> Deployment {
    let mut v = json_of(d);
    f(&mut v);
    from_json(v)
}

fn set_image(v: &mut Value, container: usize, img: &str) {
    v["spec"]["template"]["spec"]["containers"][container]["image"] = json!(img);
}

fn set_annotation(v: &mut Value, h: &str) {
    v["metadata"]["annotations"][ANNOTATION_INSTANCE] = json!(format!("instance-{h}"));
}

fn set_volume(v: &mut Value, h: &str) {
    v["spec"]["template"]["spec"]["volumes"][0]["configMap"]["name"] =
        json!(format!("instance-{h}"));
}

/// The update as the webhook decides it, checked idempotent against a reinvocation (same old).
fn update(new: &Deployment, old: &Deployment) -> Result<Deployment, DefaultError> {
    let once = default_deployment_update(new, Some(old), &cfg())?;
    let again = default_deployment_update(&once, Some(old), &cfg()).unwrap();
    assert_eq!(json_of(&once), json_of(&again), "reinvocation changed it");
    Ok(once)
}

/// Every place that names the instance names `h`.
fn assert_runs(d: &Deployment, h: &str) {
    let v = json_of(d);
    assert_eq!(
        v["metadata"]["annotations"][ANNOTATION_INSTANCE],
        format!("instance-{h}"),
        "annotation"
    );
    assert_eq!(v["metadata"]["labels"][LABEL_CONTENT_HASH], h, "label");
    let tmpl = &v["spec"]["template"];
    assert_eq!(
        tmpl["metadata"]["labels"][LABEL_CONTENT_HASH], h,
        "pod label"
    );
    for c in tmpl["spec"]["containers"].as_array().unwrap() {
        assert_eq!(c["image"], image(h), "container {}", c["name"]);
    }
    assert_eq!(
        tmpl["spec"]["volumes"][0]["configMap"]["name"],
        format!("instance-{h}"),
        "volume"
    );
}

#[test]
fn set_image_moves_the_annotation_and_the_volume() {
    let old = stored(H1);
    let new = edit(&old, |v| set_image(v, 0, &image(H2)));
    let out = update(&new, &old).unwrap();
    assert_runs(&out, H2);
    // Only the instance moved: the rest is what a deploy of H2 stores.
    assert_eq!(json_of(&out), json_of(&stored(H2)));
}

#[test]
fn rollout_undo_of_the_template_alone_brings_the_annotation_back() {
    // The template of the previous ReplicaSet, the annotation left as it was.
    let old = stored(H2);
    let previous = json_of(&stored(H1));
    let new = edit(&old, |v| {
        v["spec"]["template"] = previous["spec"]["template"].clone()
    });
    let out = update(&new, &old).unwrap();
    assert_runs(&out, H1);
}

#[test]
fn rollout_undo_with_the_old_annotations_is_already_consistent() {
    // kubectl's rollback also restores the ReplicaSet's annotations.
    let old = stored(H2);
    let new = stored(H1);
    let out = update(&new, &old).unwrap();
    assert_runs(&out, H1);
    assert!(patch_between(&new, &out).0.is_empty());
}

#[test]
fn an_annotation_changed_alone_moves_image_and_volume() {
    // Client-side apply of a manifest with `image: jockey:auto`: only the annotation is sent.
    let old = stored(H1);
    let new = edit(&old, |v| set_annotation(v, H2));
    assert_runs(&update(&new, &old).unwrap(), H2);
    // Server-side apply of the same manifest: the placeholder comes back and is filled.
    let new = edit(&old, |v| {
        set_annotation(v, H2);
        set_image(v, 0, "jockey:auto");
    });
    assert_runs(&update(&new, &old).unwrap(), H2);
}

#[test]
fn a_volume_changed_alone_moves_annotation_and_image() {
    let old = stored(H1);
    let new = edit(&old, |v| set_volume(v, H2));
    assert_runs(&update(&new, &old).unwrap(), H2);
}

#[test]
fn places_changed_together_to_one_instance_are_fine() {
    // deploy's server-side apply of its full rendering: annotation and image together.
    let old = stored(H1);
    for new in [
        edit(&old, |v| {
            set_annotation(v, H2);
            set_image(v, 0, &image(H2));
        }),
        edit(&old, |v| {
            set_image(v, 0, &image(H2));
            set_volume(v, H2);
        }),
        stored(H2),
    ] {
        assert_runs(&update(&new, &old).unwrap(), H2);
    }
}

#[test]
fn two_places_changed_to_different_instances_are_refused_naming_both() {
    let old = stored(H1);
    let cases = [
        (
            edit(&old, |v| {
                set_annotation(v, H2);
                set_image(v, 0, &image(H3));
            }),
            [
                format!("annotation {ANNOTATION_INSTANCE} says instance-{H2}"),
                format!("the image of container \"server\" is the builder's :{H3}"),
            ],
        ),
        (
            edit(&old, |v| {
                set_image(v, 0, &image(H2));
                set_volume(v, H3);
            }),
            [
                format!("the image of container \"server\" is the builder's :{H2}"),
                format!("volume \"jockey-instance\" mounts ConfigMap instance-{H3}"),
            ],
        ),
    ];
    for (new, places) in cases {
        let e = default_deployment_update(&new, Some(&old), &cfg()).unwrap_err();
        assert_eq!(e.object, format!("Deployment {P}"));
        for p in &places {
            assert!(e.cause.contains(p.as_str()), "{p:?} not in {e}");
        }
        assert!(e.fix.contains("change only one of them"), "{e}");
    }
}

#[test]
fn nothing_changed_means_nothing_moves() {
    let old = stored(H1);
    let out = update(&old, &old).unwrap();
    assert!(patch_between(&old, &out).0.is_empty());
    // A change elsewhere (replicas) leaves the instance alone too.
    let new = edit(&old, |v| v["spec"]["replicas"] = json!(3));
    let out = update(&new, &old).unwrap();
    assert_runs(&out, H1);
    assert_eq!(out.spec.replicas, Some(3));
}

#[test]
fn with_two_agent_containers_setting_one_image_moves_both() {
    let two = |h: &str| {
        edit(&stored(h), |v| {
            let c = v["spec"]["template"]["spec"]["containers"][0].clone();
            let mut second = c.clone();
            second["name"] = json!("worker");
            v["spec"]["template"]["spec"]["containers"] = json!([c, second]);
        })
    };
    let old = two(H1);
    let new = edit(&old, |v| set_image(v, 1, &image(H2)));
    let out = update(&new, &old).unwrap();
    assert_runs(&out, H2);
    // And two containers set to different instances are refused.
    let new = edit(&old, |v| {
        set_image(v, 0, &image(H2));
        set_image(v, 1, &image(H3));
    });
    let e = default_deployment_update(&new, Some(&old), &cfg()).unwrap_err();
    assert!(
        e.cause.contains("\"server\"") && e.cause.contains("\"worker\""),
        "{e}"
    );
}

#[test]
fn a_new_container_with_another_instance_s_image_moves_the_instance() {
    let old = stored(H1);
    let new = edit(&old, |v| {
        let mut c = v["spec"]["template"]["spec"]["containers"][0].clone();
        c["name"] = json!("worker");
        c["image"] = json!(image(H2));
        v["spec"]["template"]["spec"]["containers"]
            .as_array_mut()
            .unwrap()
            .push(c);
    });
    assert_runs(&update(&new, &old).unwrap(), H2);
    // The same instance's image in a new container changes nothing.
    let new = edit(&old, |v| {
        let mut c = v["spec"]["template"]["spec"]["containers"][0].clone();
        c["name"] = json!("worker");
        v["spec"]["template"]["spec"]["containers"]
            .as_array_mut()
            .unwrap()
            .push(c);
    });
    assert_runs(&update(&new, &old).unwrap(), H1);
}

#[test]
fn an_image_that_is_no_builder_image_of_ours_is_a_deliberate_choice() {
    let old = stored(H1);
    for keep in [
        format!("other.registry/hosting/{P}:{H2}"),
        format!("{REG}/hosting/{P}:v2"),
        format!("{REG}/hosting/another-project:{H2}"),
        format!("{REG}/hosting/{P}:ABCDEF0123456789"),
        format!("{REG}/hosting/{P}:{H2}0"),
        "nginx:1.27".to_string(),
    ] {
        let new = edit(&old, |v| set_image(v, 0, &keep));
        let out = update(&new, &old).unwrap();
        let v = json_of(&out);
        assert_eq!(
            v["metadata"]["annotations"][ANNOTATION_INSTANCE],
            format!("instance-{H1}"),
            "{keep}"
        );
        assert_eq!(
            v["spec"]["template"]["spec"]["containers"][0]["image"],
            keep.as_str()
        );
    }
}

#[test]
fn an_annotation_removed_while_the_image_changed_comes_back_from_the_image() {
    // kubectl's rollback to a ReplicaSet without the annotation replaces the annotations.
    let old = stored(H2);
    let previous = json_of(&stored(H1));
    let new = edit(&old, |v| {
        v["spec"]["template"] = previous["spec"]["template"].clone();
        v["metadata"]["annotations"]
            .as_object_mut()
            .unwrap()
            .remove(ANNOTATION_INSTANCE);
    });
    assert_runs(&update(&new, &old).unwrap(), H1);
}

#[test]
fn create_and_updates_without_old_object_follow_the_annotation() {
    // No old object (CREATE): the annotation is all there is to go by.
    let new = edit(&stored(H1), |v| set_annotation(v, H2));
    let out = default_deployment_update(&new, None, &cfg()).unwrap();
    assert_runs(&out, H2);
    assert_eq!(
        json_of(&out),
        json_of(&default_deployment(&new, &cfg()).unwrap())
    );
}

#[test]
fn without_a_registry_no_image_names_an_instance() {
    let no_registry = Config::default();
    let old = edit(&stored(H1), |v| set_image(v, 0, "nginx:1.27"));
    let new = edit(&old, |v| set_image(v, 0, &image(H2)));
    let out = default_deployment_update(&new, Some(&old), &no_registry).unwrap();
    let v = json_of(&out);
    assert_eq!(
        v["metadata"]["annotations"][ANNOTATION_INSTANCE],
        format!("instance-{H1}")
    );
    assert_eq!(
        v["spec"]["template"]["spec"]["containers"][0]["image"],
        image(H2)
    );
}

#[test]
fn bad_labels_and_annotations_are_refused_as_on_create() {
    let old = stored(H1);
    let unlabelled = edit(&old, |v| {
        v["metadata"]["labels"]
            .as_object_mut()
            .unwrap()
            .remove(LABEL_PROJECT);
        set_image(v, 0, &image(H2));
    });
    let e = default_deployment_update(&unlabelled, Some(&old), &cfg()).unwrap_err();
    assert!(e.cause.contains(LABEL_PROJECT), "{e}");
    let malformed = edit(&old, |v| {
        v["metadata"]["annotations"][ANNOTATION_INSTANCE] = json!("instance-XYZ");
        set_image(v, 0, &image(H2));
    });
    let e = default_deployment_update(&malformed, Some(&old), &cfg()).unwrap_err();
    assert!(e.cause.contains("instance-XYZ"), "{e}");
}
