// livekit-client as one script (global `LivekitClient`) for pages served without a bundler.
export * from "livekit-client";
