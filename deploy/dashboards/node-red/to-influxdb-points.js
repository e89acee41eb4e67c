// sensekit MQTT messages -> InfluxDB points (see deploy/dashboards/README.md).
// Windows: one point per window per zone in "sensekit_window", tags site, device, zone and
// window_s (its length), timestamp window_start. Those are exactly what window_id is made of,
// so a window delivered twice (delivery is at least once) overwrites itself.
const EXPRESSIONS = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"];
const NEGATIVE = ["angry", "disgust", "fear", "sad"];
const VOICE_EMOTIONS = ["angry", "bored", "disgust", "fear", "happy", "neutral", "sad"];

const p = msg.payload;
if (p === null || typeof p !== "object" || typeof p.schema !== "string") {
    node.warn("ignored a message that is not a sensekit JSON object on " + msg.topic);
    return null;
}
const kind = p.schema.split("/")[0];
const version = parseInt(p.schema.split("/")[1], 10);

function setNumber(fields, name, value) {
    if (typeof value === "number" && Number.isFinite(value)) {
        fields[name] = value;
    }
}

function windowPoint(w) {
    const start = new Date(w.window_start);
    const end = new Date(w.window_end);
    const fields = { complete: w.complete === true, window_id: String(w.window_id) };
    setNumber(fields, "seq", w.seq);
    setNumber(fields, "k_threshold", w.k_threshold);
    setNumber(fields, "dp_epsilon", w.dp_epsilon);
    const faces = w.faces;
    if (faces) {
        setNumber(fields, "frames", faces.frames);
        setNumber(fields, "people", faces.people);
        setNumber(fields, "unclassified", faces.unclassified);
        let classified = 0;
        let net = 0;
        for (const name of EXPRESSIONS) {
            const count = Number(faces.expressions[name] || 0);
            fields[name] = count;
            classified += count;
            if (name === "happy") net += count;
            if (NEGATIVE.includes(name)) net -= count;
        }
        if (typeof faces.net_emotion_score === "number") {
            fields.net_emotion_score = faces.net_emotion_score;
        } else if (faces.net_emotion_score === undefined && classified > 0) {
            // window/3 had no score: the same formula as sensekit.score.net_emotion_score
            fields.net_emotion_score = Math.round((1000 * net) / classified) / 10;
        }
    }
    const voice = w.voice;
    if (voice) {
        setNumber(fields, "voice_windows", voice.windows);
        setNumber(fields, "voice_audio_s", voice.audio_s);
        for (const level of ["low", "mid", "high"]) {
            fields["arousal_" + level] = Number(voice.arousal[level] || 0);
        }
        for (const name of VOICE_EMOTIONS) {
            fields["voice_" + name] = Number(voice.emotions[name] || 0);
        }
    }
    return {
        measurement: "sensekit_window",
        tags: {
            site: w.site,
            device: w.device,
            zone: w.zone,
            window_s: String(Math.round((end.getTime() - start.getTime()) / 1000)),
        },
        fields: fields,
        timestamp: start,
    };
}

function statsPoints(s) {
    const tags = { site: s.site, device: s.device };
    const time = new Date(s.timestamp);
    const fields = { version: String(s.version), degraded: s.degraded.length };
    if (s.degraded.length > 0) fields.degraded_text = s.degraded.join("; ");
    for (const name of ["interval_s", "uptime_s", "rss_mb", "cpu_temp_c", "threads", "open_fds", "windows_published"]) {
        setNumber(fields, name, s[name]);
    }
    fields.mqtt_connected = s.mqtt.connected === true;
    fields.mqtt_state = String(s.mqtt.state);
    setNumber(fields, "mqtt_reconnects", s.mqtt.reconnects);
    setNumber(fields, "mqtt_unacknowledged", s.mqtt.unacknowledged);
    if (s.spool) {
        for (const name of ["depth", "bytes", "oldest_age_s", "dropped", "delivered"]) {
            setNumber(fields, "spool_" + name, s.spool[name]);
        }
    }
    const points = [{ measurement: "sensekit_stats", tags: tags, fields: fields, timestamp: time }];
    for (const [camera, c] of Object.entries(s.cameras || {})) {
        const f = { state: String(c.state) };
        if (c.error) f.error = String(c.error);
        for (const name of ["camera_fps", "processed_fps", "skipped_fps", "frames_processed", "frames_dropped", "reopens"]) {
            setNumber(f, name, c[name]);
        }
        points.push({ measurement: "sensekit_camera", tags: { ...tags, camera: camera }, fields: f, timestamp: time });
    }
    for (const [microphone, m] of Object.entries(s.microphones || {})) {
        const f = { state: String(m.state) };
        if (m.error) f.error = String(m.error);
        for (const name of ["audio_s", "overflows", "dropped_s", "speech_windows", "reopens"]) {
            setNumber(f, name, m[name]);
        }
        points.push({ measurement: "sensekit_microphone", tags: { ...tags, microphone: microphone }, fields: f, timestamp: time });
    }
    return points;
}

let points;
if (kind === "sensekit.window" && version >= 3) {
    points = [windowPoint(p)];
} else if (kind === "sensekit.stats" && version >= 2) {
    points = statsPoints(p);
} else if (kind === "sensekit.status") {
    // Stamped when received: the last will ("offline") carries the time the device connected.
    points = [{
        measurement: "sensekit_status",
        tags: { site: p.site, device: p.device },
        fields: { state: String(p.state), online: p.state === "online" ? 1 : 0 },
        timestamp: new Date(),
    }];
} else {
    node.warn("ignored " + p.schema + " on " + msg.topic);
    return null;
}
msg.payload = points;
return msg;
