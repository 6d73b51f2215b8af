"""Generated protobuf and gRPC stubs for semcom.v1 (do not edit; see gensemcom.shared.protogen)."""
