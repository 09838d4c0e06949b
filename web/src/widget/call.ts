// The browser voice call: the microphone, the room joined with the token from `/voice`, the
// agent's audio played and measured, its state, live captions, and typing into the call.

import {
  DisconnectReason, LocalAudioTrack, RemoteParticipant,
  RemoteTrack, Room, RoomEvent, Track, type TextStreamReader,
} from "livekit-client";

import type { VoiceSession } from "./api";
import { LevelMeter } from "./meter";

export type CallEnd = "hung_up" | "lost" | "closed";

export interface Caption {
  id: string;
  speaker: "visitor" | "agent";
  text: string;
  final: boolean;
}

export interface CallListener {
  agentPresent(present: boolean): void;
  /** The framework's `lk.agent.state`: initializing, listening, thinking, speaking, idle. */
  agentState(state: string): void;
  caption(caption: Caption): void;
  ended(why: CallEnd): void;
  audioBlocked(blocked: boolean): void;
  /** A person from the team is heard in the call (their name), or no longer (null). */
  humanHeard(name: string | null): void;
}

const AGENT_STATE = "lk.agent.state";
const ROLE = "baton.role";
const TRANSCRIPTION = "lk.transcription";

export class VoiceCall {
  readonly room = new Room({ adaptiveStream: false, dynacast: false });
  private agentMeter: LevelMeter | null = null;
  private human: { track: RemoteTrack; meter: LevelMeter } | null = null;
  private readonly micMeter: LevelMeter;
  private readonly players = new Set<HTMLMediaElement>();
  private endedBy: CallEnd | null = null;
  private muted = false;

  constructor(private readonly mic: LocalAudioTrack, private readonly audio: AudioContext,
              private readonly speakers: HTMLElement, private readonly listener: CallListener) {
    this.micMeter = new LevelMeter(audio, mic.mediaStreamTrack);
    const room = this.room;
    room.on(RoomEvent.TrackSubscribed, (track, publication, participant) =>
      this.play(track, publication.trackName, participant));
    room.on(RoomEvent.TrackUnsubscribed, (track) => this.stopPlaying(track));
    room.on(RoomEvent.ParticipantConnected, () => this.checkAgent());
    room.on(RoomEvent.ParticipantDisconnected, () => this.checkAgent());
    room.on(RoomEvent.ParticipantAttributesChanged, (changed, participant) => {
      if (participant.isAgent && AGENT_STATE in changed) {
        listener.agentState(changed[AGENT_STATE]);
      }
    });
    room.on(RoomEvent.AudioPlaybackStatusChanged, () =>
      listener.audioBlocked(!room.canPlaybackAudio));
    room.on(RoomEvent.Disconnected, (reason) => this.disconnected(reason));
    room.registerTextStreamHandler(TRANSCRIPTION, (reader, from) => {
      void this.caption(reader, from.identity);
    });
  }

  async join(session: VoiceSession): Promise<void> {
    await this.room.connect(session.url, session.token);
    performance.mark("baton:connected");
    await this.room.localParticipant.publishTrack(this.mic, {
      source: Track.Source.Microphone, name: "microphone",
    });
    this.checkAgent();
  }

  /** Loudness of the agent's voice, a team member's and the visitor's microphone, 0 to 1. */
  levels(): { agent: number; human: number; visitor: number } {
    return { agent: this.agentMeter?.level() ?? 0, human: this.human?.meter.level() ?? 0,
             visitor: this.muted ? 0 : this.micMeter.level() };
  }

  async setMuted(muted: boolean): Promise<void> {
    this.muted = muted;
    if (muted) await this.mic.mute();
    else await this.mic.unmute();
  }

  async useMicrophone(deviceId: string): Promise<void> {
    await this.mic.setDeviceId(deviceId);
  }

  /** Typed during the call: the voice agent answers it in the call. */
  async send(text: string): Promise<void> {
    await this.room.localParticipant.sendText(text, { topic: "lk.chat" });
  }

  startAudio(): Promise<void> {
    return this.room.startAudio();
  }

  async hangUp(): Promise<void> {
    this.endedBy = "hung_up";
    await this.room.disconnect();
  }

  private play(track: RemoteTrack, name: string, participant: RemoteParticipant): void {
    if (track.kind !== Track.Kind.Audio) return;
    const element = track.attach();
    // Whose track each element plays, for the page's own tools and tests.
    element.dataset.batonSpeaker = participant.identity;
    element.dataset.batonTrack = name;
    this.speakers.append(element);
    this.players.add(element);
    if (participant.isAgent) {
      this.agentMeter?.disconnect();
      this.agentMeter = new LevelMeter(this.audio, track.mediaStreamTrack);
    } else if (participant.attributes[ROLE] === "human") {
      this.human?.meter.disconnect();
      this.human = { track, meter: new LevelMeter(this.audio, track.mediaStreamTrack) };
      this.listener.humanHeard(participant.name || "A team member");
    }
  }

  private stopPlaying(track: RemoteTrack): void {
    for (const element of track.detach()) {
      element.remove();
      this.players.delete(element);
    }
    if (this.human?.track === track) {
      this.human.meter.disconnect();
      this.human = null;
      this.listener.humanHeard(null);
    }
  }

  private checkAgent(): void {
    const agent = [...this.room.remoteParticipants.values()].find((p) => p.isAgent);
    this.listener.agentPresent(agent !== undefined);
    const state = agent?.attributes[AGENT_STATE];
    if (state) this.listener.agentState(state);
  }

  private async caption(reader: TextStreamReader, sender: string): Promise<void> {
    const attributes = reader.info.attributes ?? {};
    const ownTrack = this.mic.sid;
    const speaker = attributes["lk.transcribed_track_id"] === ownTrack ||
      sender === this.room.localParticipant.identity ? "visitor" : "agent";
    const id = attributes["lk.segment_id"] ?? reader.info.id;
    let text = "";
    for await (const chunk of reader) {
      text += chunk;
      this.listener.caption({ id, speaker, text, final: false });
    }
    this.listener.caption({ id, speaker, text,
                            final: attributes["lk.transcription_final"] === "true" });
  }

  private disconnected(reason: DisconnectReason | undefined): void {
    for (const element of this.players) element.remove();
    this.players.clear();
    this.agentMeter?.disconnect();
    this.human?.meter.disconnect();
    this.human = null;
    this.micMeter.disconnect();
    this.mic.stop();
    const why: CallEnd = this.endedBy ?? (
      reason === DisconnectReason.ROOM_DELETED || reason === DisconnectReason.ROOM_CLOSED ||
      reason === DisconnectReason.PARTICIPANT_REMOVED ? "closed" : "lost");
    this.listener.ended(why);
  }
}
