"""The HTTP and WebSocket handlers: thin, they parse, call one service and render."""
