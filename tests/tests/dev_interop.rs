#[path = "e2e/support.rs"] mod support;
#[path = "e2e/interop_nutshell.rs"] mod interop_nutshell;
#[path = "e2e/postgres.rs"] mod postgres;
