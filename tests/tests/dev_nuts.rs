#[path = "e2e/support.rs"] mod support;
#[path = "e2e/nuts.rs"] mod nuts;
