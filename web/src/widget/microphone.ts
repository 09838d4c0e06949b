// The local microphone for the visitor's call and the human's: opening it, and the ways that
// fails said as one of three problems the pages put into words.

import { createLocalAudioTrack, LocalAudioTrack, Room } from "livekit-client";

export type MicrophoneProblem = "refused" | "missing" | "busy";

export class MicrophoneError extends Error {
  constructor(readonly problem: MicrophoneProblem) {
    super(`microphone ${problem}`);
  }
}

/** Open the microphone (`deviceId`, else the default) with the browser's voice processing. */
export async function openMicrophone(deviceId?: string): Promise<LocalAudioTrack> {
  try {
    return await createLocalAudioTrack({
      ...(deviceId ? { deviceId } : {}), echoCancellation: true, noiseSuppression: true,
      autoGainControl: true,
    });
  } catch (error) {
    const name = error instanceof Error ? error.name : "";
    if (name === "NotAllowedError" || name === "SecurityError") {
      throw new MicrophoneError("refused");
    }
    if (name === "NotFoundError" || name === "OverconstrainedError") {
      throw new MicrophoneError("missing");
    }
    throw new MicrophoneError("busy");
  }
}

export async function microphones(): Promise<MediaDeviceInfo[]> {
  return (await Room.getLocalDevices("audioinput", false)).filter((d) => d.deviceId);
}
