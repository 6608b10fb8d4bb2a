package alerts

import (
	"strings"
	"text/template"
	"text/template/parse"
)

// message is a rule's message template cut into text and MessageData
// fields, when that is all it holds (every default rule's): a fleet's
// flapping targets render thousands of messages a tick, which
// text/template's reflection made a third of the alert rules' cost.
// A template with anything else (conditions, functions) has none.
type message []segment

// segment is literal text, or the MessageData field field names.
type segment struct {
	text  string
	field string
}

func plainMessage(t *template.Template) message {
	if t.Tree == nil || t.Tree.Root == nil {
		return nil
	}
	var m message
	for _, n := range t.Tree.Root.Nodes {
		switch n := n.(type) {
		case *parse.TextNode:
			m = append(m, segment{text: string(n.Text)})
		case *parse.ActionNode:
			f, ok := field(n)
			if !ok {
				return nil
			}
			m = append(m, segment{field: f})
		default:
			return nil
		}
	}
	return m
}

// field is the string field of MessageData an action prints, as in
// {{.Value}}.
func field(n *parse.ActionNode) (string, bool) {
	if len(n.Pipe.Decl) > 0 || len(n.Pipe.Cmds) != 1 || len(n.Pipe.Cmds[0].Args) != 1 {
		return "", false
	}
	f, ok := n.Pipe.Cmds[0].Args[0].(*parse.FieldNode)
	if !ok || len(f.Ident) != 1 {
		return "", false
	}
	switch f.Ident[0] {
	case "Rule", "Metric", "Severity", "Host", "Target", "Value", "Threshold", "Detail":
		return f.Ident[0], true
	}
	return "", false
}

// render writes the message of d to b, as the template would.
func (m message) render(b *strings.Builder, d *MessageData) {
	for _, s := range m {
		switch s.field {
		case "":
			b.WriteString(s.text)
		case "Rule":
			b.WriteString(d.Rule)
		case "Metric":
			b.WriteString(d.Metric)
		case "Severity":
			b.WriteString(d.Severity)
		case "Host":
			b.WriteString(d.Host)
		case "Target":
			b.WriteString(d.Target)
		case "Value":
			b.WriteString(d.Value)
		case "Threshold":
			b.WriteString(d.Threshold)
		case "Detail":
			b.WriteString(d.Detail)
		}
	}
}
