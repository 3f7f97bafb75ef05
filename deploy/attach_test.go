package deploy

import (
	"slices"
	"strings"
	"testing"
)

// Every gateway and natter history use one attachment store: a file
// uploaded through one gateway is served by the others, and history's
// erase and retention delete it. Compose shares a volume; Kubernetes pods
// share no disk, so they use S3, configured from each role's own Secret.
func TestAttachmentStoreShared(t *testing.T) {
	services, _ := decodeAll(t, "compose/compose.yaml")[0].(map[string]any)["services"].(map[string]any)
	users := 0
	for name, s := range services {
		svc := s.(map[string]any)
		cmd := strs(svc["command"])
		if len(cmd) < 2 || cmd[0] != "natter" || (cmd[1] != "gateway" && cmd[1] != "history") {
			continue
		}
		users++
		if !slices.Contains(cmd, "--attachments-dir=/attachments") || !slices.Contains(strs(svc["volumes"]), "attachments:/attachments") {
			t.Errorf("compose: %s does not use the shared attachments volume: %v, volumes %v", name, cmd, strs(svc["volumes"]))
		}
		if cmd[1] == "history" && !slices.Contains(cmd, "--attachments=fs") {
			t.Errorf("compose: history names no attachment store (alone it has none): %v", cmd)
		}
	}
	if users != 3 {
		t.Errorf("compose: %d gateway and history services, want 3", users)
	}

	users = 0
	for _, doc := range decodeAll(t, "kubernetes/roles.yaml") {
		walk(doc, func(c map[string]any) {
			cmd := append(strs(c["command"]), strs(c["args"])...)
			if len(cmd) < 2 || cmd[0] != "natter" || (cmd[1] != "gateway" && cmd[1] != "history") {
				return
			}
			users++
			if !slices.Contains(cmd, "--attachments=s3") || !slices.ContainsFunc(cmd, func(a string) bool { return strings.HasPrefix(a, "--s3-endpoint=$(") }) {
				t.Errorf("kubernetes: natter %s does not use the S3 store: %v", cmd[1], cmd)
			}
			want := map[string]bool{"NATTER_S3_ENDPOINT": false, "NATTER_S3_BUCKET": false, "NATTER_S3_ACCESS_KEY": false, "NATTER_S3_SECRET_KEY": false}
			envList, _ := c["env"].([]any)
			for _, e := range envList {
				em, _ := e.(map[string]any)
				vf, _ := em["valueFrom"].(map[string]any)
				ref, _ := vf["secretKeyRef"].(map[string]any)
				if _, ok := want[toString(em["name"])]; ok && toString(ref["name"]) == "natter-"+cmd[1] {
					want[toString(em["name"])] = true
				}
			}
			for k, ok := range want {
				if !ok {
					t.Errorf("kubernetes: natter %s gets no %s from its Secret", cmd[1], k)
				}
			}
		})
	}
	if users != 2 {
		t.Errorf("kubernetes: %d gateway and history containers, want 2", users)
	}
}
