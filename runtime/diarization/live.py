"""Live speaker diarization: speaker turns while the audio arrives, the offline result at the end.

Each round of windows that the segmentation stream runs is embedded once (the Diarizer's
``Rounds``) and serves twice. Kept, it is what the offline clustering needs at ``flush``, so the
final result is the offline Diarizer's, byte for byte. As it comes, each window's local
speakers are matched to the speakers heard so far (``OnlineClustering``) and their activity is
voted into a timeline (``LiveTimeline``) whose frames are labelled once ``latency`` seconds of
audio after them have arrived, and never relabelled.

Which windows vote on a frame depends only on the frame and the latency (those whose 10 s have
all arrived by the frame's middle plus ``latency``), never on how the audio was cut into
pushes, so any push sizes give the same live turns.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.spatial.distance import cdist

from powerseg.errors import OptionError, StreamClosedError

from ..binarize import SEGMENT_PRECISION, BinarizeOptions, Region, RegionTracker
from ..framing import Framing
from ..metrics import speaker_mapping
from ..segmentation.stream import FrameParts
from .clustering import training_pairs
from .diarizer import Diarization, Diarizer, Turn, speaker_bounds
from .reconstruct import timeline_frames
from .voices import VoiceBank, check_threshold, match_voices

# The offline threshold as a cosine distance, times this: the lowest pooled live DER over
# the shared sets at latencies 1, 2, 5 and 10 s among 0.6 to 2.6
# (benchmarks/live.py --parts accuracy --new-speaker-factors ...).
NEW_SPEAKER_FACTOR = 1.2
# A window's frames vote with weights falling linearly from 1 at its first frame to this at
# its last: a frame near a window's end is segmented with little audio after it. Offline,
# every frame also has windows where it sits early; live, at a short latency, it has mostly
# windows where it sits late. (Pooled live DER over the shared sets, benchmarks/live.py.)
LAST_FRAME_WEIGHT = 0.02
# A turn still going on is emitted in pieces that end on this grid (seconds): its moments are
# labelled within the latency plus this (plus the compute of the window that decides them).
PIECE_SECONDS = 0.1
# A local speaker too brief or overlapped to move a centroid opens a new speaker only this many
# times farther from every centroid than a reliable one must be (2 gave the lowest pooled live
# DER at latencies 1 to 10 s among 1 to 4; benchmarks/live.py).
UNRELIABLE_FACTOR = 2.0


class OnlineClustering:
    """Each window's local speakers -> speakers, one window at a time.

    diart's rule on the offline pipeline's embeddings: a one-to-one assignment on cosine
    distance to the centroids, so two local speakers of one window are two people, unless
    one is close to a centroid another took (then they are one). A speaker reliable enough
    for the offline clustering (alone for a fifth of its window, with an embedding) and
    farther than ``new_speaker_distance(threshold)`` from every centroid opens a new speaker
    while ``max_speakers`` allows; reliable matches add to their centroid (a sum of
    embeddings: offline's centroids are means). Others are matched to a free centroid, or,
    farther than ``UNRELIABLE_FACTOR`` times that distance from every centroid, open one: a
    voice heard only briefly or in overlap so far is still someone new. An early guess can
    make one person two speakers: two centroids closer than a new speaker must be are merged
    into the older (``merges`` tells the timeline), as offline's linkage merges clusters
    whose centroids are close.
    """

    def __init__(self, threshold: float, max_speakers: int | None = None):
        self.new_speaker = new_speaker_distance(threshold)  # cosine distance
        self.max_speakers = max_speakers
        self.sums = np.zeros((0, 0))  # (speakers, dimension) float64
        self.alias = np.zeros(0, np.int64)  # each speaker's own index, or the one it merged into
        self.merges: list[tuple[int, int]] = []  # (merged, into) since the caller last took them

    @property
    def num_speakers(self) -> int:
        """Speakers opened so far, merged ones included (their labels were given)."""
        return len(self.sums)

    def __call__(self, binarized: np.ndarray, embeddings: np.ndarray) -> np.ndarray:
        """(frames, local speakers) 0/1 and (local speakers, dimension) -> (local speakers,)
        speaker of each, -1 for none (silent, no embedding, or no free speaker)."""
        speakers = np.full(binarized.shape[1], -1, dtype=np.int64)
        usable = binarized.any(axis=0) & np.isfinite(embeddings).all(axis=1)
        reliable = np.zeros(binarized.shape[1], dtype=bool)
        reliable[training_pairs(embeddings[None], binarized[None])[1]] = True
        # the reliable speakers first: they alone move centroids
        self._match(np.flatnonzero(reliable), embeddings, speakers, reliable=True)
        self._match(np.flatnonzero(usable & ~reliable), embeddings, speakers, reliable=False)
        self._merge()
        speakers[speakers >= 0] = self.alias[speakers[speakers >= 0]]
        return speakers

    def _match(self, rows: np.ndarray, embeddings: np.ndarray, speakers: np.ndarray,
               reliable: bool) -> None:
        """One-to-one: ``rows`` to the speakers no other local speaker took (or new ones)."""
        alive = self._alive()
        free = np.setdiff1d(alive, speakers[speakers >= 0])
        room = len(rows) if self.max_speakers is None else \
            max(0, min(len(rows), self.max_speakers - self.num_speakers))
        if len(rows) == 0 or len(free) + room == 0:
            return
        vectors = np.asarray(embeddings[rows], dtype=np.float64)
        distance = np.full((len(rows), self.num_speakers), np.inf)
        if len(alive):
            distance[:, alive] = cdist(vectors, self.sums[alive], metric="cosine")
        limit = self.new_speaker if reliable else self.new_speaker * UNRELIABLE_FACTOR
        cost = np.full((len(rows), len(free) + room), limit)
        cost[:, :len(free)] = distance[:, free]
        for row, column in zip(*linear_sum_assignment(cost)):
            if column < len(free):
                speaker = free[column]
            elif distance[row].min(initial=np.inf) < limit:
                if not reliable:
                    continue  # near a speaker another local speaker took: no guess
                speaker = int(np.argmin(distance[row]))  # close to a taken one: the same person
            else:
                self.sums = np.vstack([self.sums.reshape(-1, len(vectors[row])), vectors[row]])
                self.alias = np.append(self.alias, len(self.alias))
                speakers[rows[row]] = len(self.sums) - 1
                continue
            speakers[rows[row]] = speaker
            if reliable:
                self.sums[speaker] += vectors[row]

    def _alive(self) -> np.ndarray:
        """The speakers not merged into another."""
        return np.flatnonzero(self.alias == np.arange(self.num_speakers))

    def _merge(self) -> None:
        """Merge the closest two centroids into the older while closer than a new speaker."""
        while True:
            alive = self._alive()
            if len(alive) < 2:
                return
            distance = cdist(self.sums[alive], self.sums[alive], metric="cosine")
            distance[np.tril_indices(len(alive))] = np.inf
            first, second = np.unravel_index(np.argmin(distance), distance.shape)
            if not distance[first, second] < self.new_speaker:
                return
            into, merged = alive[first], alive[second]  # first < second: the older keeps it
            self.sums[into] += self.sums[merged]
            self.alias[self.alias == merged] = into
            self.merges.append((int(merged), int(into)))


class LiveTimeline:
    """The votes of the windows run so far on each frame's speakers, and the frames decided.

    Per frame, as the offline reconstruction but over the windows run so far, each weighted
    by where the frame sits in it (``LAST_FRAME_WEIGHT``): the number of speakers is the
    rounded weighted mean of the windows' counts (capped at ``max_speakers``), and the
    speakers are those with the largest weighted activity. A frame no window covers (the few
    between one window's last frame and the next window's end) repeats the frame before it.
    Decided frames go through one ``RegionTracker`` per speaker into turns; ``cut`` emits the
    certain part of the turns still going on, so a long turn is heard in pieces, each
    continuing the last, rather than after its end.
    """

    def __init__(self, framing: Framing, max_speakers: int | None = None,
                 min_duration_off: float = 0.0,
                 name: Callable[[int], str | None] | None = None):
        self.framing = framing
        self._name = name  # a speaker's name when it is first heard (enrolled voices), if any
        self._unnamed = 0  # SPEAKER_xx labels given
        self.max_speakers = max_speakers
        self.decided = 0  # frames whose speakers are decided, from the first
        self.votes = np.zeros((0, 0), np.float32)  # (held frames, speakers) summed activity
        self.counts = np.zeros(0, np.float32)  # summed number of active local speakers
        self.weights = np.zeros(0, np.float32)  # summed weight of the windows on each frame
        self._frame_weight = np.linspace(1.0, LAST_FRAME_WEIGHT, framing.spec.num_frames,
                                         dtype=np.float32)
        self.held = 0  # frames from ``decided`` on that some window covers
        self.previous = np.zeros(0, np.uint8)  # the last decided frame's speakers
        self._grid = framing.spec.grid
        self._binarize = BinarizeOptions(onset=0.5, offset=0.5, min_duration_off=min_duration_off)
        self.trackers: list[RegionTracker] = []
        self.labels: dict[int, str] = {}  # global speaker -> live label, in order of appearance
        self._held: list[Region] = []  # final turns that a turn ending earlier may still precede
        self._emitted: list[float] = []  # per speaker: where the turns emitted so far end

    def add(self, chunk: int, binarized: np.ndarray, hard: np.ndarray) -> None:
        """One window's (frames, local speakers) activity, its local speakers' global ones."""
        first = self.framing.first_frame(chunk)
        skip = max(0, self.decided - first)  # frames already decided keep their speakers
        start, end = first + skip - self.decided, first + len(binarized) - self.decided
        if end <= start:
            return
        self._reserve(end, max(self.votes.shape[1], int(hard.max(initial=-1)) + 1))
        rows, weight = binarized[skip:], self._frame_weight[skip:len(binarized)]
        for speaker in np.unique(hard[hard >= 0]):
            self.votes[start:end, speaker] += weight * rows[:, hard == speaker].max(axis=1)
        self.counts[start:end] += weight * rows.sum(axis=1)
        self.weights[start:end] += weight
        self.held = max(self.held, end)

    def merge(self, merged: int, into: int) -> None:
        """``merged`` is ``into`` from now on: its votes on the frames not decided yet move
        to ``into``; what it was given so far stays as it was emitted."""
        if merged < self.votes.shape[1]:  # into < merged: older
            self.votes[:, into] += self.votes[:, merged]
            self.votes[:, merged] = 0

    def _reserve(self, frames: int, speakers: int) -> None:
        if frames <= len(self.weights) and speakers <= self.votes.shape[1]:
            return
        size = max(frames, 2 * len(self.weights)) if frames > len(self.weights) else len(self.weights)
        votes = np.zeros((size, speakers), np.float32)
        votes[:self.held, :self.votes.shape[1]] = self.votes[:self.held]
        counts, weights = np.zeros(size, np.float32), np.zeros(size, np.float32)
        counts[:self.held], weights[:self.held] = self.counts[:self.held], self.weights[:self.held]
        self.votes, self.counts, self.weights = votes, counts, weights

    def decide(self, upto: int) -> list[Region]:
        """Decide frames [decided, upto) (no further than some window covers, unless the stream
        ended); returns the turns that became final, labelled."""
        count = min(upto, self.decided + self.held) - self.decided
        if count <= 0:
            return []
        speakers = self.votes.shape[1]
        votes, weights = self.votes[:count], self.weights[:count]
        number = np.rint(self.counts[:count] / np.where(weights > 0, weights, 1)).astype(np.int64)
        if self.max_speakers is not None:
            number = np.minimum(number, self.max_speakers)
        ranked = np.argsort(-votes, axis=1, kind="stable")
        on = np.zeros(votes.shape, np.uint8)
        np.put_along_axis(on, ranked, (np.arange(speakers)[None, :] < number[:, None])
                          .astype(np.uint8), axis=1)
        on &= (votes > 0).astype(np.uint8)
        previous = np.zeros(speakers, np.uint8)
        previous[:len(self.previous)] = self.previous
        for frame in np.flatnonzero(weights == 0):  # no window covers it: as the frame before
            on[frame] = on[frame - 1] if frame else previous
        self.previous = on[-1].copy()
        turns = self._track(on)
        self._shift(count)
        return turns

    def _shift(self, count: int) -> None:
        keep = self.held - count
        for buffer in (self.votes, self.counts, self.weights):
            buffer[:keep] = buffer[count:self.held]
            buffer[keep:self.held] = 0
        self.held, self.decided = keep, self.decided + count

    def _track(self, on: np.ndarray) -> list[Region]:
        """Decided frames through each speaker's tracker; labels in order of first activity."""
        firsts = [(int(np.argmax(on[:, s])), s) for s in range(on.shape[1])
                  if s not in self.labels and on[:, s].any()]
        for _, speaker in sorted(firsts):
            name = self._name(speaker) if self._name is not None else None
            if name is None:
                name, self._unnamed = f"SPEAKER_{self._unnamed:02d}", self._unnamed + 1
            self.labels[speaker] = name
        for speaker in range(on.shape[1]):
            if speaker == len(self.trackers):  # a new speaker: its tracker catches up, silent
                tracker = RegionTracker(self._binarize, "", self._grid)
                tracker.push(np.zeros(self.decided, np.float32))
                self.trackers.append(tracker)
                self._emitted.append(-math.inf)
            self._hold(speaker, self.trackers[speaker].push(on[:, speaker]))
        return self._release()

    def cut(self) -> list[Region]:
        """The part of each turn still going on that is certain by now (from where its last
        piece ended), then the turns released as ``decide`` releases them."""
        for speaker, tracker in enumerate(self.trackers):
            self._hold(speaker, [r for r in [tracker.open_part()] if r is not None])
        return self._release()

    def _next_end(self, speaker: int) -> float:
        """The earliest end a turn or piece still to come of ``speaker`` can have: the next
        cut's, while its turn going on has an uncut part."""
        tracker, part = self.trackers[speaker], self.trackers[speaker].open_part()
        if part is not None and part.end > self._emitted[speaker]:
            return min(part.end, tracker.earliest_end())
        return tracker.earliest_end()

    def _hold(self, speaker: int, regions: list[Region]) -> None:
        """A speaker's final regions, less what its earlier pieces already gave."""
        for region in regions:
            start = max(region.start, self._emitted[speaker])
            if region.end - start > SEGMENT_PRECISION:
                self._held.append(Region(start, region.end, self.labels[speaker]))
                self._emitted[speaker] = region.end

    def _release(self, horizon: float | None = None) -> list[Region]:
        """The held turns that end before every turn still to come, by (end, start, label):
        so the order of all turns never depends on when they were asked for."""
        if horizon is None:
            horizon = min((self._next_end(s) for s in range(len(self.trackers))), default=math.inf)
        key = lambda t: (t.end, t.start, t.label)  # noqa: E731
        self._held.sort(key=key)
        count = next((i for i, t in enumerate(self._held) if not t.end < horizon), len(self._held))
        out, self._held = self._held[:count], self._held[count:]
        return out

    def flush(self, upto: int) -> list[Region]:
        """The end: decide every frame up to ``upto`` and close every speaker's last turn."""
        turns = self.decide(upto)
        for speaker, tracker in enumerate(self.trackers):
            self._hold(speaker, tracker.flush())
        return turns + self._release(math.inf)


def check_latency(latency: float, step: float, window: float, name: str = "latency") -> float:
    """``latency`` as a float, or an OptionError naming it (``name``: as the user wrote it)."""
    if isinstance(latency, bool) or not isinstance(latency, (int, float, np.floating)) or \
            not math.isfinite(latency) or not step <= latency <= window:
        raise OptionError(f"{name} must be a number of seconds from the step ({step:g} s) to "
                          f"the window ({window:g} s), got {latency!r}")
    return float(latency)


@dataclass(frozen=True)
class LiveEnd:
    """What ``DiarizationStream.flush`` returns: the last live turns, the offline result of
    everything pushed, and which final speaker each live label became (None: no match)."""

    turns: list[Turn]
    diarization: Diarization
    labels: dict[str, str | None]  # live label -> final label


class LiveLabels:
    """The live part of a stream, without the models: windows' activity and embeddings in, in
    order; labelled turns out, each frame decided by the windows that end no later than its
    middle plus ``latency``."""

    def __init__(self, framing: Framing, latency: float, threshold: float,
                 max_speakers: int | None = None, min_duration_off: float = 0.0,
                 voices: VoiceBank | None = None, voice_threshold: float | None = None):
        self.framing = framing
        self.latency = check_latency(latency, framing.step, framing.spec.window)
        self.clustering = OnlineClustering(threshold, max_speakers)
        self.voices, self.voice_threshold = voices, voice_threshold
        self.timeline = LiveTimeline(framing, max_speakers, min_duration_off,
                                     None if voices is None else self._voice)
        self.windows = 0  # windows clustered so far
        self._piece = max(1, round(PIECE_SECONDS / framing.spec.grid.step))  # frames
        self._ready: list[Region] = []  # turns decided and not taken yet

    def _voice(self, speaker: int) -> str | None:
        """The enrolled voice a speaker heard for the first time matches (its centroid so
        far), among those no live speaker took: a live name, like a live label, never changes."""
        taken = set(self.timeline.labels.values())
        match, = match_voices(self.clustering.sums[speaker:speaker + 1], [""],
                              self.voices.without(taken), check_threshold(self.voice_threshold))
        return match.name

    def _upto(self, seconds: float, strict: bool) -> int:
        """Frames whose middle plus the latency is before (``strict``) or at ``seconds``."""
        x = self.framing.spec.grid.position(seconds - self.latency)
        return max(0, math.ceil(x) if strict else math.floor(x) + 1)

    def _window_end(self, chunk: int) -> float:
        return self.framing.chunk_start(chunk) + self.framing.spec.window

    def add(self, binarized: np.ndarray, embeddings: np.ndarray) -> None:
        """Windows (in order): first decide the frames the next one must not vote on."""
        for active, vectors in zip(binarized, embeddings):
            if self.windows:
                self._decide(self._horizon())
            speakers = self.clustering(active, vectors)
            for merged, into in self.clustering.merges:
                self.timeline.merge(merged, into)
            self.clustering.merges.clear()
            self.timeline.add(self.windows, active, speakers)
            self.windows += 1

    def advance(self, seconds: float) -> list[Region]:
        """``seconds`` of audio are in: the turns final since the last call, by their end.
        Frames wait for the windows that end before their deadline, even those still running."""
        if self.windows:
            self._decide(min(self._upto(seconds, strict=False), self._horizon()))
        out, self._ready = self._ready, []
        return out

    def _decide(self, upto: int) -> None:
        """Decide the frames before ``upto``, cutting the turns going on at each multiple of
        ``PIECE_SECONDS`` on the way: cuts fall on a fixed grid, never where a push happened
        to end, so any push sizes give the same pieces."""
        timeline = self.timeline
        while (point := (timeline.decided // self._piece + 1) * self._piece) <= upto:
            self._ready += timeline.decide(point)
            if timeline.decided < point:  # no window covers the frames up to it yet
                return
            self._ready += timeline.cut()
        self._ready += timeline.decide(upto)

    def _horizon(self) -> int:
        """The frames decided before the next window: the last its end does not concern."""
        return self._upto(self._window_end(self.windows), strict=True)

    def flush(self) -> list[Region]:
        """Every window is in: decide the rest of the timeline, close every turn."""
        frames = timeline_frames(self.framing, self.windows)
        self._decide(frames)
        out = self._ready + self.timeline.flush(frames)
        self._ready = []
        return out


class DiarizationStream:
    """``push`` audio as it arrives and get speaker turns ``latency`` seconds after they are
    heard; ``flush`` at the end gives the rest and the offline ``Diarization`` itself."""

    def __init__(self, diarizer: Diarizer, latency: float = 5.0, sample_rate: int | None = None,
                 num_speakers: int | None = None, min_speakers: int | None = None,
                 max_speakers: int | None = None):
        _, high = speaker_bounds(num_speakers, min_speakers, max_speakers)
        self._asked = dict(num_speakers=num_speakers, min_speakers=min_speakers,
                           max_speakers=max_speakers)
        self._diarizer = diarizer
        options = diarizer.options
        self.live = LiveLabels(diarizer.segmenter.framing, latency,
                               options.clustering_threshold, high, options.min_duration_off,
                               diarizer.voices, diarizer.voice_threshold)
        self.latency = self.live.latency
        self._rounds = diarizer.rounds(then=self.live.add)
        self._stream = diarizer.segmenter.stream(sample_rate=sample_rate,
                                                 on_windows=self._rounds)
        self._frames = FrameParts()  # the stream's final frame scores, for the offline result
        self._heard: list[Region] = []  # every live turn, pieces joined: the label mapping's
        self._last: dict[str, int] = {}  # label -> index of its latest turn in ``_heard``
        self._closed = False

    def push(self, samples: np.ndarray, sample_rate: int | None = None) -> list[Turn]:
        """Add samples (any number); returns the live turns that became final since the last
        push, in the order of their ends."""
        self._check_open()
        self._frames.add(self._stream.push(samples, sample_rate))
        rate = self._diarizer.segmenter.spec.sample_rate
        out = self.live.advance(self._stream.samples_pushed / rate)
        self._remember(out)
        return [Turn(*t) for t in out]

    def flush(self) -> LiveEnd:
        """End of audio: the remaining live turns, the offline result, the label mapping."""
        self._check_open()
        self._closed = True
        segmenter = self._diarizer.segmenter
        self._frames.add(self._stream.flush())  # "no samples were pushed", as a Segmenter's
        segmenter.check_length(self._stream, "stream")
        segmentation = segmenter.result(self._frames, self._stream)
        self._frames = FrameParts()
        last = self.live.flush()
        self._remember(last)
        result = self._diarizer.finish(segmentation, self._rounds, source="stream",
                                       **self._asked)
        final = [Region(t.start, t.end, t.speaker) for t in result.turns()]
        labels = speaker_mapping(self._heard, final)
        return LiveEnd([Turn(*t) for t in last], result, labels)

    @property
    def samples_pushed(self) -> int:
        """Samples pushed so far, at the model's rate."""
        return self._stream.samples_pushed

    def _remember(self, turns: list[Region]) -> None:
        """Keep the live turns for the mapping, a piece that continues its speaker's last turn
        joined to it: ten pieces a second of speech would otherwise pile up over hours."""
        for turn in turns:
            last = self._last.get(turn.label)
            if last is not None and self._heard[last].end == turn.start:
                self._heard[last] = Region(self._heard[last].start, turn.end, turn.label)
            else:
                self._last[turn.label] = len(self._heard)
                self._heard.append(turn)

    def _check_open(self) -> None:
        if self._closed:
            raise StreamClosedError("diarization stream already flushed: start a new one "
                                    "with Diarizer.stream()")


def replay(diarizer: Diarizer, result: Diarization, latency: float) -> list[Turn]:
    """The live turns a stream of ``diarizer`` at ``latency`` gives for the audio of its
    offline ``result`` (the same windows and embeddings, fed as a live stream feeds them):
    to weigh latencies against each other without streaming the audio again."""
    _, high = speaker_bounds(result.num_speakers, result.min_speakers, result.max_speakers)
    live = LiveLabels(diarizer.segmenter.framing, latency, diarizer.options.clustering_threshold,
                      high, diarizer.options.min_duration_off)
    turns = []
    for window, (active, vectors) in enumerate(zip(result.segmentation.activations,
                                                   result.embeddings)):
        live.add(active[None], vectors[None])
        turns += live.advance(live.framing.chunk_start(window) + live.framing.spec.window)
    return [Turn(*t) for t in turns + live.flush()]


def new_speaker_distance(threshold: float) -> float:
    """The offline threshold is a distance between centroids of unit vectors; between one
    embedding and a centroid, as a cosine distance, it is ``threshold ** 2 / 2`` (times the
    factor measured for live use)."""
    return threshold ** 2 / 2 * NEW_SPEAKER_FACTOR
