// The build-dependency on protoc-bin-vendored exists only so that cargo unpacks its protoc binary
// before cdk-signatory's build script runs it through tools/protoc.
fn main() {}
