declare module 'virtual:task-forms' {
  const forms: import('./forms/spec').TaskFormsModule;
  export default forms;
}
