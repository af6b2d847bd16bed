#[path = "e2e/nuts.rs"]
mod nuts;
#[path = "e2e/support.rs"]
mod support;
