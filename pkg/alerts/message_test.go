package alerts

import (
	"strings"
	"testing"
	"text/template"
)

// Every default rule's message renders without text/template, and exactly
// as the template does; a template with more than fields keeps
// text/template.
func TestPlainMessagesRenderAsTheTemplate(t *testing.T) {
	data := MessageData{
		Rule: "r", Metric: "m", Severity: "critical", Host: "gpu01", Target: "gpu3",
		Value: "97.5", Threshold: "95", Detail: "hw_slowdown, sw_thermal_slowdown",
	}
	for _, r := range Defaults() {
		c, err := compile(r)
		if err != nil {
			t.Fatal(err)
		}
		if c.plain == nil {
			t.Errorf("rule %s: message %q is rendered by text/template", r.Name, r.Message)
			continue
		}
		var want, got strings.Builder
		if err := c.msg.Execute(&want, data); err != nil {
			t.Fatal(err)
		}
		c.plain.render(&got, &data)
		if got.String() != want.String() {
			t.Errorf("rule %s: %q, the template says %q", r.Name, got.String(), want.String())
		}
	}
	for _, text := range []string{`{{if .NoData}}none{{end}}`, `{{.Value | printf "%s"}}`, `{{.NoData}}`, `{{$v := .Value}}{{$v}}`} {
		tm := template.Must(template.New("t").Parse(text))
		if m := plainMessage(tm); m != nil {
			t.Errorf("%q is taken as plain: %+v", text, m)
		}
	}
}
