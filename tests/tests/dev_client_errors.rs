#[path = "e2e/support.rs"] mod support;
#[path = "e2e/client_errors.rs"] mod client_errors;
