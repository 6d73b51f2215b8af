"""Things both ends of the link need: wire contract, frame codec, modem, key codec, config, gRPC helpers."""
