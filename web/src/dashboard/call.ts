// The human's side of a handoff in the visitor's room, as deploy/human.py does it: joined with
// auto-subscribe off and a token that cannot publish; in consult only the agent's tracks are
// subscribed (its briefing is the one the server lets through); after connect, once the agent
// has granted the microphone, it is published and everyone is heard.

import {
  DisconnectReason, LocalAudioTrack, type Participant, ParticipantKind,
  RemoteParticipant, type RemoteTrack, RemoteTrackPublication, Room, RoomEvent, Track,
} from "livekit-client";

import { LevelMeter } from "../widget/meter";

export type CallEnd = "hung_up" | "lost" | "closed";
export type Who = "agent" | "visitor" | "other";

export interface HumanCallListener {
  /** The agent granted the microphone (after connect) and it is published. */
  talking(): void;
  ended(why: CallEnd): void;
  audioBlocked(blocked: boolean): void;
}

const ROLE = "baton.role";

export function whoIs(participant: Participant): Who {
  if (participant.isAgent) return "agent";
  const role = participant.attributes[ROLE];
  if (role === "visitor" || (!role && participant.kind === ParticipantKind.SIP)) {
    return "visitor";
  }
  return "other";
}

export class HumanCall {
  readonly room = new Room({ adaptiveStream: false, dynacast: false });
  private readonly meters = new Map<Who, { track: RemoteTrack; meter: LevelMeter }>();
  private readonly players = new Set<HTMLMediaElement>();
  private micMeter: LevelMeter | null = null;
  private endedBy: CallEnd | null = null;
  private closed = false;
  private open = false;
  private muted = false;
  private granted: (() => void) | null = null;

  constructor(private mic: LocalAudioTrack | null, private readonly audio: AudioContext,
              private readonly speakers: HTMLElement,
              private readonly listener: HumanCallListener) {
    if (mic) this.micMeter = new LevelMeter(audio, mic.mediaStreamTrack);
    const room = this.room;
    room.on(RoomEvent.TrackPublished, (publication, participant) =>
      this.published(publication, participant));
    room.on(RoomEvent.TrackSubscribed, (track, publication, participant) =>
      this.play(track, publication.trackName, participant));
    room.on(RoomEvent.TrackUnsubscribed, (track) => this.stopPlaying(track));
    room.on(RoomEvent.ParticipantPermissionsChanged, (_previous, participant) => {
      if (participant === room.localParticipant && participant.permissions?.canPublish) {
        this.granted?.();
      }
    });
    room.on(RoomEvent.AudioPlaybackStatusChanged, () =>
      listener.audioBlocked(!room.canPlaybackAudio));
    room.on(RoomEvent.Disconnected, (reason) => this.disconnected(reason));
  }

  get hasMicrophone(): boolean {
    return this.mic !== null;
  }

  /** Join in consult: listening to the agent only. */
  async join(url: string, token: string): Promise<void> {
    await this.room.connect(url, token, { autoSubscribe: false });
    for (const participant of this.room.remoteParticipants.values()) {
      for (const publication of participant.trackPublications.values()) {
        this.published(publication, participant);
      }
    }
    await this.room.startAudio().catch(() => undefined);
    this.listener.audioBlocked(!this.room.canPlaybackAudio);
  }

  useMicrophone(mic: LocalAudioTrack): void {
    this.mic?.stop();
    this.micMeter?.disconnect();
    this.mic = mic;
    this.micMeter = new LevelMeter(this.audio, mic.mediaStreamTrack);
  }

  /** Ask for the visitor (`press` posts connect), wait until the agent lets the microphone
   * through, publish it and hear everyone. */
  async connect(press: () => Promise<unknown>): Promise<void> {
    const local = this.room.localParticipant;
    const granted = local.permissions?.canPublish ? Promise.resolve()
      : new Promise<void>((resolve) => { this.granted = resolve; });
    await press();
    await granted;
    this.granted = null;
    if (this.closed) return;
    this.open = true;
    if (this.mic) {
      await local.publishTrack(this.mic, { source: Track.Source.Microphone, name: "microphone" });
      if (this.muted) await this.mic.mute();
    }
    for (const participant of this.room.remoteParticipants.values()) {
      for (const publication of participant.trackPublications.values()) {
        publication.setSubscribed(true);
      }
    }
    this.listener.talking();
  }

  /** Loudness, 0 to 1: the human's microphone, the agent's voice and the visitor's. */
  levels(): { mine: number; agent: number; visitor: number } {
    return { mine: this.muted ? 0 : this.micMeter?.level() ?? 0,
             agent: this.meters.get("agent")?.meter.level() ?? 0,
             visitor: this.meters.get("visitor")?.meter.level() ?? 0 };
  }

  async setMuted(muted: boolean): Promise<void> {
    this.muted = muted;
    if (!this.mic) return;
    if (muted) await this.mic.mute();
    else await this.mic.unmute();
  }

  startAudio(): Promise<void> {
    return this.room.startAudio();
  }

  async hangUp(): Promise<void> {
    this.endedBy = "hung_up";
    this.granted?.();
    await this.room.disconnect();
  }

  private published(publication: RemoteTrackPublication, participant: RemoteParticipant): void {
    if (this.open || participant.isAgent) publication.setSubscribed(true);
  }

  private play(track: RemoteTrack, name: string, participant: RemoteParticipant): void {
    if (track.kind !== Track.Kind.Audio) return;
    const element = track.attach();
    element.dataset.batonSpeaker = participant.identity;
    element.dataset.batonTrack = name;
    this.speakers.append(element);
    this.players.add(element);
    const who = whoIs(participant);
    if (who === "other") return;
    this.meters.get(who)?.meter.disconnect();
    this.meters.set(who, { track, meter: new LevelMeter(this.audio, track.mediaStreamTrack) });
  }

  private stopPlaying(track: RemoteTrack): void {
    for (const element of track.detach()) {
      element.remove();
      this.players.delete(element);
    }
    for (const [who, { track: metered, meter }] of this.meters) {
      if (metered === track) {
        meter.disconnect();
        this.meters.delete(who);
      }
    }
  }

  private disconnected(reason: DisconnectReason | undefined): void {
    this.closed = true;
    this.granted?.();
    for (const element of this.players) element.remove();
    this.players.clear();
    for (const { meter } of this.meters.values()) meter.disconnect();
    this.meters.clear();
    this.micMeter?.disconnect();
    this.mic?.stop();
    void this.audio.close();
    const why: CallEnd = this.endedBy ?? (
      reason === DisconnectReason.ROOM_DELETED || reason === DisconnectReason.ROOM_CLOSED ||
      reason === DisconnectReason.PARTICIPANT_REMOVED ? "closed" : "lost");
    this.listener.ended(why);
  }
}
